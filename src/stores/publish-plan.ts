// What a publish changes in the tree: one merge walk over the committed and the next manifest's files.
import type { ManifestFile } from "../core/manifest.js";
import { comparePaths } from "../core/safe-path.js";

/** A path and the content it holds (or is to hold). */
export interface PathContent {
  path: string;
  sha256: string;
}

/** Indexes into a file list as [first, end) ranges, ascending: a full sync's 40,000 files are one range. */
export type IndexRanges = [number, number][];

/** The files `ranges` pick out of `files`, in order: the entries themselves, not copies. */
export function pickRanges<T>(files: readonly T[], ranges: IndexRanges): T[] {
  const out: T[] = [];
  for (const [first, end] of ranges) for (let i = first; i < end; i++) out.push(files[i] as T);
  return out;
}

export interface PublishPlan {
  /** Files of `next` whose content is new at their path, as index ranges into `next`. */
  place: IndexRanges;
  /** Paths of `prev` that `next` does not list, in manifest order. */
  remove: string[];
  /** The current content of every path about to be replaced, then of every path about to be removed. */
  retain: PathContent[];
}

/**
 * Compares two file lists, each sorted by path without duplicates (as every manifest is; throws when
 * `next` is not). A merge walk rather than maps by path: for 40,000 files those maps cost megabytes
 * of heap per publish.
 */
export function planPublish(prev: readonly ManifestFile[], next: readonly ManifestFile[]): PublishPlan {
  const place: IndexRanges = [];
  const remove: string[] = [];
  const replaced: PathContent[] = [];
  const removed: PathContent[] = [];
  let i = 0;
  const drop = (f: ManifestFile) => {
    remove.push(f.path);
    removed.push({ path: f.path, sha256: f.sha256 });
  };
  let last: string | undefined;
  for (const [j, f] of next.entries()) {
    // Unsorted input would turn the walk's "not listed" into deleting listed files: refuse it.
    if (last !== undefined && comparePaths(last, f.path) >= 0) throw new Error(`planPublish: files out of order at ${JSON.stringify(f.path)}`);
    last = f.path;
    while (i < prev.length && comparePaths((prev[i] as ManifestFile).path, f.path) < 0) drop(prev[i++] as ManifestFile);
    const old = i < prev.length && (prev[i] as ManifestFile).path === f.path ? (prev[i++] as ManifestFile) : undefined;
    if (old?.sha256 === f.sha256) continue;
    const run = place.at(-1);
    if (run?.[1] === j) run[1] = j + 1;
    else place.push([j, j + 1]);
    if (old) replaced.push({ path: old.path, sha256: old.sha256 });
  }
  while (i < prev.length) drop(prev[i++] as ManifestFile);
  return { place, remove, retain: [...replaced, ...removed] };
}
