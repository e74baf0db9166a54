// Runs one job: its command line in a child process (events on a pipe), then its hooks; the outcome for `run`, `daemon` and the log.
import { spawn } from "node:child_process";
import { setPriority } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { describeHookEnd, runHook, summaryEnv } from "../cli/hook.js";
import { EXIT } from "../cli/exit-codes.js";
import type { Job } from "../config/job-schema.js";
import { parseDuration } from "../core/duration.js";
import type { EngineEvent, RunSummary } from "../engine/events.js";
import { jobArgv, jobTarget } from "./argv.js";

/** The CLI entry the child runs: the same installation as this process. */
const CLI = fileURLToPath(new URL("../../bin/update-mirror.js", import.meta.url));
const DEFAULT_HOOK_TIMEOUT = "5m";

export interface JobRunOptions {
  name: string;
  job: Job;
  /** The config file the job came from, passed on for what jobs share (network, passwords by reference). */
  configFile: string | undefined;
  /** Flags the child gets for its log (level, file, rotation), so parent and child write one log. */
  logArgs: readonly string[];
  logger: Logger;
  /** Wait up to the job's `randomDelay` first (scheduled runs, not a run asked for by hand). */
  scheduled: boolean;
  dryRun: boolean;
  /** Every event the child reports (the engine's NDJSON). */
  onEvent?: (event: EngineEvent) => void;
  /** Lines the child wrote on stderr that are not its final error. */
  onStderr?: (line: string) => void;
  /** Aborting sends the child SIGTERM: it finishes the files under way and leaves the target consistent. */
  signal?: AbortSignal;
  /** The child's environment (default: ours). */
  env?: NodeJS.ProcessEnv;
}

export interface JobOutcome {
  name: string;
  /** The child's exit code (the README table), or 9 when it succeeded and a hook failed. */
  exitCode: number;
  result: "updated" | "unchanged" | "partial" | "failed" | "dry-run";
  summary?: RunSummary;
  /** The child's final error message, when it failed (a failed hook is in `hooks`). */
  error?: string;
  /** Hooks run, in order, and how each ended. */
  hooks: { hook: "onSuccess" | "onChange" | "onFailure"; exitCode: number | null; ok: boolean; ended: string }[];
  started: string;
  finished: string;
}

/** Sleeps up to `maxMs` at random; an abort ends the wait early. */
function randomDelay(maxMs: number, signal: AbortSignal | undefined): Promise<void> {
  const ms = Math.floor(Math.random() * maxMs);
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Runs `options.job` once and its hooks after it. Never throws for what the job does: a failure is in
 * the outcome (exit code, error). Hook output and exit codes go to the log.
 */
export async function runJob(options: JobRunOptions): Promise<JobOutcome> {
  const { name, job, logger } = options;
  if (options.scheduled && job.randomDelay !== undefined) {
    const maxMs = parseDuration(job.randomDelay, `jobs.${name}.randomDelay`);
    logger.info({ job: name, maxDelayMs: maxMs }, "job:delay");
    await randomDelay(maxMs, options.signal);
  }
  if (options.signal?.aborted) {
    const now = new Date().toISOString();
    logger.info({ job: name }, "job:stopped before it started");
    return { name, exitCode: EXIT.stopped, result: "failed", error: "stopped before it started; nothing was done", hooks: [], started: now, finished: now };
  }
  const started = new Date().toISOString();
  const argv = [CLI, ...jobArgv(job, options.configFile), ...(options.dryRun ? ["--dry-run"] : []), "--json", "--as-job", name, ...options.logArgs];
  logger.info({ job: name, type: job.type, command: argv.slice(1, 2) }, "job:start");
  // Its own process group: a Ctrl-C at the terminal reaches only us, and we pass on one SIGTERM (two would stop it at once).
  const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env, windowsHide: true, detached: process.platform !== "win32" });
  if (job.nice !== undefined && job.nice > 0 && child.pid !== undefined) {
    try {
      setPriority(child.pid, job.nice);
    } catch (err) {
      logger.warn({ job: name, nice: job.nice, err }, "could not lower the job's CPU priority");
    }
  }
  const stop = () => child.kill("SIGTERM");
  options.signal?.addEventListener("abort", stop);
  let summary: RunSummary | undefined;
  let error: string | undefined;
  const lines = createInterface({ input: child.stdout });
  lines.on("line", (line) => {
    let event: EngineEvent;
    try {
      event = JSON.parse(line) as EngineEvent;
    } catch {
      options.onStderr?.(line);
      return;
    }
    if (event.type === "run:done") summary = event.summary;
    options.onEvent?.(event);
  });
  const errors = createInterface({ input: child.stderr });
  errors.on("line", (line) => {
    // The CLI's error boundary prints the final error as "update-mirror: MESSAGE" (continuation lines indented).
    if (line.startsWith("update-mirror: ")) error = line.slice("update-mirror: ".length);
    else if (error !== undefined && line.startsWith("  ")) error += `\n${line}`;
    else options.onStderr?.(line);
  });
  const [code, signal] = (await new Promise((resolve) => {
    child.once("error", (err) => {
      error = `could not start ${process.execPath}: ${err.message}`;
      resolve([EXIT.internal, null]);
    });
    child.once("close", (c, s) => resolve([c, s]));
  })) as [number | null, NodeJS.Signals | null];
  options.signal?.removeEventListener("abort", stop);
  const exitCode = code ?? (signal === "SIGTERM" || signal === "SIGINT" ? EXIT.stopped : EXIT.internal);
  if (code === null) error ??= `the job's process was stopped by ${signal}`;
  // A run that ended well may still have said something on the way (a stop notice that came too late).
  if (exitCode === EXIT.ok) error = undefined;
  const result: JobOutcome["result"] =
    exitCode === EXIT.ok ? (summary?.result === "partial" ? "partial" : (summary?.result ?? "unchanged")) : exitCode === EXIT.partial && summary ? "partial" : "failed";
  const outcome: JobOutcome = { name, exitCode, result, ...(summary && { summary }), ...(error !== undefined && { error }), hooks: [], started, finished: new Date().toISOString() };
  logger[exitCode === EXIT.ok ? "info" : "error"]({ job: name, exitCode, result, error, summary }, "job:done");
  // A run stopped by the daemon (or a signal) is not an outcome to act on.
  if (!options.dryRun && !options.signal?.aborted) await runHooks(options, outcome);
  outcome.finished = new Date().toISOString();
  return outcome;
}

/** onChange after a change, onSuccess after a run that ended well, onFailure otherwise; a failing hook makes the run's exit code 9. */
async function runHooks(options: JobRunOptions, outcome: JobOutcome): Promise<void> {
  const { name, job, logger } = options;
  const hooks = job.hooks;
  if (!hooks) return;
  const timeoutMs = parseDuration(hooks.timeout ?? DEFAULT_HOOK_TIMEOUT, `jobs.${name}.hooks.timeout`);
  const ok = outcome.exitCode === EXIT.ok;
  const chosen: ("onChange" | "onSuccess" | "onFailure")[] = [];
  if (outcome.result === "updated" || (outcome.result === "partial" && (outcome.summary?.added ?? 0) + (outcome.summary?.updated ?? 0) + (outcome.summary?.removed ?? 0) > 0)) chosen.push("onChange");
  chosen.push(ok ? "onSuccess" : "onFailure");
  for (const hook of chosen) {
    const command = hooks[hook];
    if (command === undefined) continue;
    const env = {
      UPDATE_MIRROR_JOB: name,
      UPDATE_MIRROR_EVENT: hook === "onChange" ? "change" : hook === "onSuccess" ? "success" : "failure",
      UPDATE_MIRROR_RESULT: outcome.result,
      UPDATE_MIRROR_TARGET: jobTarget(job).path,
      UPDATE_MIRROR_EXIT_CODE: String(outcome.exitCode),
      ...summaryEnv(outcome.summary),
      ...(outcome.error !== undefined && { UPDATE_MIRROR_ERROR: outcome.error.split("\n")[0] as string }),
    };
    const result = await runHook(command, env, timeoutMs);
    const hookOk = result.exitCode === 0 && !result.timedOut;
    const ended = describeHookEnd(result);
    outcome.hooks.push({ hook, exitCode: result.exitCode, ok: hookOk, ended });
    logger[hookOk ? "info" : "error"]({ job: name, hook, exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut, output: result.output }, "hook:done");
    if (!hookOk && outcome.exitCode === EXIT.ok) outcome.exitCode = EXIT.hook;
  }
}
