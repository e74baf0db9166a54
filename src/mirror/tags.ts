// Tag rules: assign manifest tags (product, platform, ...) to files from path globs.
import picomatch from "picomatch";
import type { Tags } from "../core/manifest.js";

export interface TagRule {
  /** One glob or several, matched against the whole relative path ('**' crosses folders). */
  match: string | string[];
  set: Tags;
}

/** Builds a function giving a path's tags: every matching rule applies in order, later ones win per key. */
export function createTagger(rules: readonly TagRule[]): (path: string) => Tags | undefined {
  const compiled = rules.map((rule) => ({ test: picomatch(rule.match, { dot: true }), set: rule.set }));
  return (path) => {
    let tags: Tags | undefined;
    for (const rule of compiled) {
      if (rule.test(path)) tags = { ...tags, ...rule.set };
    }
    return tags;
  };
}
