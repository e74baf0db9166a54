// Facts the engine reports while it runs; reporters (progress bar, plain lines, NDJSON, logs) render them.

export type EngineEvent =
  | { type: "run:start"; dest: string; sources: string[]; dryRun: boolean }
  | { type: "run:recovered"; version: number }
  | { type: "run:drift"; paths: string[] }
  | { type: "source:probe"; source: string; result: "manifest" | "unchanged" | "none" | "error" | "cooling-down" | "refused"; version?: number; reason?: string }
  | { type: "source:chosen"; source: string; version?: number }
  | { type: "source:passed-over"; source: string; reason: string }
  | { type: "run:restart"; reason: string }
  | { type: "plan:ready"; add: number; update: number; remove: number; keep: number; downloadBytes: number; files: PlannedChange[] }
  | { type: "file:start"; path: string; size: number; source: string; offset: number }
  | { type: "file:progress"; path: string; bytes: number }
  | { type: "file:retry"; path: string; source: string; attempt: number; delayMs: number; reason: string }
  | { type: "file:failover"; path: string; from: string; reason: string }
  | { type: "file:done"; path: string; size: number; source: string; reused: boolean }
  | { type: "file:failed"; path: string; reason: string }
  | { type: "publish:start"; version: number }
  | { type: "run:done"; summary: RunSummary };

export interface PlannedChange {
  action: "add" | "update" | "remove";
  path: string;
  size: number;
}

export interface RunSummary {
  /** "partial": published what verified; `failed` files kept their previous version and nothing was removed. */
  result: "updated" | "partial" | "unchanged" | "dry-run";
  version: number | null;
  previousVersion: number | null;
  /** The upstream version the previous state came from, when it came from a manifest upstream. */
  previousUpstreamVersion: number | null;
  source: string | null;
  upstreamVersion: number | null;
  added: number;
  updated: number;
  removed: number;
  /** Files no source could deliver intact (only in a "partial" result; otherwise the run throws). */
  failed: number;
  /** Bytes transferred from sources in this run. */
  bytes: number;
  elapsedMs: number;
}

export type Emit = (event: EngineEvent) => void;
