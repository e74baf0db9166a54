// A run as the history and `status` keep it: its naming, times, outcome and counts, never a secret.
import { UpdateMirrorError } from "../core/errors.js";
import type { RunRecord } from "../core/store.js";
import type { RunSummary } from "./events.js";

/** How a run is named in history: the verb and, under `run JOB`, the job. */
export interface RunNaming {
  command: string;
  job?: string | undefined;
}

/** The record of a run that ended with `summary`, or with `error` before or instead of one. */
export function runRecord(naming: RunNaming | undefined, started: string, finished: string, result: RunRecord["result"], summary?: RunSummary, error?: unknown): RunRecord {
  return {
    started,
    finished,
    result,
    ...(naming && { command: naming.command, ...(naming.job !== undefined && { job: naming.job }) }),
    ...(summary && {
      ...(summary.version !== null && { version: summary.version }),
      ...(summary.source !== null && { source: summary.source }),
      ...(summary.upstreamVersion !== null && { upstreamVersion: summary.upstreamVersion }),
      added: summary.added,
      updated: summary.updated,
      removed: summary.removed,
      failed: summary.failed,
      bytes: summary.bytes,
    }),
    ...(error !== undefined && {
      error: error instanceof UpdateMirrorError ? { code: error.code, message: error.message } : { code: "E_INTERNAL", message: String((error as Error | undefined)?.message ?? error) },
    }),
  };
}
