// The daemon's scheduler: each job with a `schedule` runs on it (croner), one job at a time, missed runs caught up once, reloadable.
import { Cron } from "croner";
import PQueue from "p-queue";
import type { Logger } from "pino";
import type { Job } from "../config/job-schema.js";
import type { Config } from "../config/schema.js";
import { parseDuration } from "../core/duration.js";
import type { RunRecord } from "../core/store.js";
import { type JobOutcome, type JobRunOptions, runJob } from "./run-job.js";

export interface SchedulerOptions {
  config: Config;
  configFile: string | undefined;
  logArgs: readonly string[];
  logger: Logger;
  /** The history a job has recorded (for catching up a run missed while the daemon was down). */
  readHistory: (name: string, job: Job) => Promise<RunRecord[]>;
  /** Runs one job; `runJob` unless a test puts something else here. */
  run?: (options: JobRunOptions) => Promise<JobOutcome>;
  onOutcome?: (outcome: JobOutcome) => void;
  now?: () => Date;
}

export interface Scheduler {
  /** When each scheduled job runs next. */
  nextRuns(): { job: string; next: Date | null }[];
  /** Takes a new config: schedules change at once; a run under way finishes under the old definition. */
  reload(config: Config, configFile: string | undefined): void;
  /** Stops scheduling, drops what is queued, asks the run under way to stop (it finishes its files) and waits for it. */
  stop(): Promise<void>;
}

/**
 * Starts scheduling. Jobs run one at a time, in the order they came due, so two jobs never fight for
 * one mirror's lock; a job already queued or running is not queued again (a run that outlasts its
 * interval skips the next one, it does not pile up). A run missed while the daemon was down or the
 * machine asleep runs once, as soon as possible; never several.
 */
export function startScheduler(options: SchedulerOptions): Scheduler {
  const { logger } = options;
  const run = options.run ?? runJob;
  const now = options.now ?? (() => new Date());
  const queue = new PQueue({ concurrency: 1 });
  const pending = new Set<string>();
  const stopping = new AbortController();
  let config = options.config;
  let configFile = options.configFile;
  let crons: { name: string; cron: Cron }[] = [];
  const delays = new Set<NodeJS.Timeout>();

  function enqueue(name: string, why: string): void {
    if (stopping.signal.aborted) return;
    if (pending.has(name)) {
      logger.warn({ job: name, why }, "job:skipped (the previous run is still queued or running)");
      return;
    }
    pending.add(name);
    // The random delay is waited out before the job joins the queue, so it never holds up other jobs.
    const spread = config.jobs[name]?.randomDelay;
    const delayMs = why === "schedule" && spread !== undefined ? Math.floor(Math.random() * parseDuration(spread, `jobs.${name}.randomDelay`)) : 0;
    logger.info({ job: name, why, delayMs }, "job:queued");
    const timer = setTimeout(() => {
      delays.delete(timer);
      void queue.add(() => runQueued(name, why));
    }, delayMs);
    delays.add(timer);
  }

  async function runQueued(name: string, why: string): Promise<void> {
    try {
      // The definition as it is now: a reload between queueing and running applies.
      const job = config.jobs[name];
      if (!job || stopping.signal.aborted) return;
      const outcome = await run({ name, job, configFile, logArgs: options.logArgs, logger, scheduled: false, dryRun: false, signal: stopping.signal });
      logger.info({ job: name, why, exitCode: outcome.exitCode, result: outcome.result }, "job:finished");
      options.onOutcome?.(outcome);
    } catch (err) {
      // runJob does not throw for what a job does; this is ours, and the daemon must outlive it.
      logger.error({ job: name, err }, "job:error");
    } finally {
      pending.delete(name);
    }
  }

  function schedule(): void {
    for (const { cron } of crons) cron.stop();
    crons = [];
    for (const [name, job] of Object.entries(config.jobs)) {
      if (job.schedule === undefined) continue;
      // protect: croner does not start a callback while the last one runs; our queue decides anyway.
      crons.push({ name, cron: new Cron(job.schedule, { protect: true }, () => enqueue(name, "schedule")) });
    }
    logger.info({ jobs: crons.map(({ name, cron }) => ({ job: name, next: cron.nextRun()?.toISOString() ?? null })) }, "daemon:scheduled");
  }

  /** A job whose last recorded run is older than its last due time missed it: it runs now, once. */
  async function catchUp(): Promise<void> {
    for (const { name, cron } of crons) {
      const job = config.jobs[name];
      const due = cron.previousRuns(1, now())[0];
      if (!job || due === undefined) continue;
      let last: RunRecord | undefined;
      try {
        last = (await options.readHistory(name, job)).filter((r) => r.job === name).at(-1);
      } catch (err) {
        logger.warn({ job: name, err }, "could not read the job's history; not catching up");
        continue;
      }
      if (last === undefined || Date.parse(last.started) < due.getTime()) enqueue(name, "missed");
    }
  }

  schedule();
  void catchUp();

  return {
    nextRuns: () => crons.map(({ name, cron }) => ({ job: name, next: cron.nextRun() })),
    reload(next, nextFile) {
      config = next;
      configFile = nextFile;
      schedule();
    },
    async stop() {
      for (const { cron } of crons) cron.stop();
      crons = [];
      for (const timer of delays) clearTimeout(timer);
      delays.clear();
      queue.clear();
      stopping.abort("SIGTERM");
      await queue.onIdle();
    },
  };
}
