// The mirror job export and import share: copy a mirror's signed manifest and files, as they are, into a folder store.
import type { Source } from "../core/source.js";
import type { PublicKey } from "../crypto/minisign.js";
import type { RunSummary } from "../engine/events.js";
import type { TargetFile } from "../engine/plan.js";
import { SELECT_ALL } from "../engine/select.js";
import type { RunNaming } from "../engine/run-record.js";
import { runSync } from "../engine/sync.js";
import { createFolderStore } from "../stores/folder.js";
import { DEFAULT_RETRY } from "../wrap/retry.js";
import { type Runtime, stopSignal } from "../cli/runtime.js";

export interface ReplicaJob {
  source: Source;
  /** The folder that becomes (or stays) a complete mirror at the source's version. */
  dest: string;
  trustKeys: PublicKey[];
  allowRollback: boolean;
  allowExpired: boolean;
  /** Previous generations kept at `dest`: none on removable media, the usual three inside. */
  keepGenerations: number;
  dryRun: boolean;
  json: boolean;
  verbose: boolean;
  checkPlan?: (missing: readonly TargetFile[], committedVersion: number | undefined) => void | Promise<void>;
  /** How the run goes into the destination's history (false: it is recorded elsewhere). */
  record: RunNaming | false;
}

// Local disks and media: more in flight than the polite default for remote servers.
const LOCAL_CONCURRENCY = 8;

/** Runs the job with the engine's publish guarantees; throws what runSync throws. */
export async function runReplica(job: ReplicaJob, rt: Runtime): Promise<RunSummary> {
  const { createReporter } = await import("../cli/reporters/reporter.js");
  return runSync({
    sources: [job.source],
    store: createFolderStore(job.dest),
    selection: SELECT_ALL,
    tagRules: [],
    trust: { keys: job.trustKeys, allowRollback: job.allowRollback, allowExpired: job.allowExpired },
    dryRun: job.dryRun,
    concurrency: LOCAL_CONCURRENCY,
    retry: { ...DEFAULT_RETRY, attempts: 2 },
    // The upstream already applied its deletion limits; a replica follows it exactly.
    maxDelete: { percent: 100 },
    keepGenerations: job.keepGenerations,
    replicate: true,
    record: job.record,
    signal: stopSignal(),
    ...(job.checkPlan && { checkPlan: job.checkPlan }),
    emit: createReporter({ json: job.json, verbose: job.verbose, logger: rt.logger }),
  });
}
