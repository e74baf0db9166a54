// The plan: the pure difference between what a mirror holds and what its upstream offers.
import { RefusedPlanError } from "../core/errors.js";
import type { ManifestFile, Tags } from "../core/manifest.js";
import type { PlannedChange } from "./events.js";

/** A file the upstream offers. `sha256` is unknown for sources without a manifest until downloaded. */
export interface TargetFile {
  path: string;
  size: number;
  sha256?: string;
  tags?: Tags;
  mtimeMs?: number;
}

export interface Plan {
  add: TargetFile[];
  update: TargetFile[];
  remove: ManifestFile[];
  /** Unchanged files, carried into the next manifest (with the target's tags). */
  keep: ManifestFile[];
  /** Upper bound of bytes to fetch (before subtracting content already staged). */
  downloadBytes: number;
}

/** Diffs `current` against `target`. A target file without a hash counts as changed unless its size differs. */
export function planSync(current: readonly ManifestFile[], target: readonly TargetFile[]): Plan {
  const byPath = new Map(current.map((f) => [f.path, f]));
  const plan: Plan = { add: [], update: [], remove: [], keep: [], downloadBytes: 0 };
  for (const t of target) {
    const have = byPath.get(t.path);
    byPath.delete(t.path);
    if (!have) plan.add.push(t);
    else if (t.sha256 !== undefined && t.sha256 === have.sha256 && t.size === have.size) {
      const kept: ManifestFile = { path: have.path, size: have.size, sha256: have.sha256 };
      if (t.tags) kept.tags = t.tags;
      plan.keep.push(kept);
    } else plan.update.push(t);
  }
  plan.remove = [...byPath.values()];
  plan.downloadBytes = [...plan.add, ...plan.update].reduce((sum, f) => sum + f.size, 0);
  return plan;
}

/** Every change of a plan, for reports. */
export function planChanges(plan: Plan): PlannedChange[] {
  return [
    ...plan.add.map((f) => ({ action: "add" as const, path: f.path, size: f.size })),
    ...plan.update.map((f) => ({ action: "update" as const, path: f.path, size: f.size })),
    ...plan.remove.map((f) => ({ action: "remove" as const, path: f.path, size: f.size })),
  ];
}

/** A limit on deletions: a number of files, or a percentage of the mirror. */
export type MaxDelete = { count: number } | { percent: number };

/** Parses "25" or "10%". Returns undefined when malformed. */
export function parseMaxDelete(text: string): MaxDelete | undefined {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(text.trim());
  if (pct) return Number(pct[1]) <= 100 ? { percent: Number(pct[1]) } : undefined;
  return /^\d+$/.test(text.trim()) ? { count: Number(text.trim()) } : undefined;
}

/**
 * Refuses a plan that would delete more than `limit` allows: an upstream that is empty or shrank
 * sharply is far more often a broken upstream than a real change (rclone's --max-delete).
 */
export function checkDeletions(plan: Plan, currentCount: number, limit: MaxDelete, source: string): void {
  const removing = plan.remove.length;
  if (removing === 0) return;
  const allowed = "count" in limit ? limit.count : Math.floor((currentCount * limit.percent) / 100);
  if (removing > allowed) {
    const what = plan.add.length + plan.update.length + plan.keep.length === 0 ? "is empty" : "shrank sharply";
    throw new RefusedPlanError(
      `${source} ${what}: the plan removes ${removing} of ${currentCount} files, more than --max-delete allows (${"count" in limit ? limit.count : `${limit.percent}%`}); nothing was changed. If this is intended, run again with a higher --max-delete (e.g. 100%).`,
    );
  }
}
