// Selection: which upstream files a mirror or endpoint takes, by path globs and manifest tags.
import picomatch from "picomatch";
import type { TagKey, Tags } from "../core/manifest.js";

export interface Selection {
  include: string[];
  exclude: string[];
  /** Each listed tag must have one of the values; files without the tag are not selected. */
  tags: Partial<Record<TagKey, string[]>>;
}

export const SELECT_ALL: Selection = { include: [], exclude: [], tags: {} };

/** Builds the predicate for a selection. Globs match whole relative paths ('**' crosses folders). */
export function createSelector(selection: Selection): (file: { path: string; tags?: Tags | undefined }) => boolean {
  const include = selection.include.length > 0 ? picomatch(selection.include, { dot: true }) : undefined;
  const exclude = selection.exclude.length > 0 ? picomatch(selection.exclude, { dot: true }) : undefined;
  const tagRules = Object.entries(selection.tags) as [TagKey, string[]][];
  return (file) => {
    if (include && !include(file.path)) return false;
    if (exclude?.(file.path)) return false;
    return tagRules.every(([key, values]) => {
      const value = file.tags?.[key];
      return value !== undefined && values.includes(value);
    });
  };
}
