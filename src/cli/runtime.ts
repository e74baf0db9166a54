// What every command handler gets: the logger, the output stream, and the options all commands share.
import type { Logger } from "pino";
import type { Argv } from "yargs";
import { parseDuration } from "../core/duration.js";
import { UsageError } from "../core/errors.js";
import { byteSizeSetting } from "../core/size.js";
import type { LogFileOptions } from "./log-file.js";
import { createLogger, LOG_LEVELS, type LogLevel } from "./logger.js";

export interface GlobalArgs {
  "log-level": LogLevel;
  "log-file"?: string | undefined;
  "log-max-size"?: string | undefined;
  "log-keep"?: number | undefined;
  "log-max-age"?: string | undefined;
  /** Set by `run JOB` on the command it starts, so the run is recorded under the job's name. */
  "as-job"?: string | undefined;
}

export interface Runtime {
  logger: Logger;
  /** Writes one line of command output to stdout. */
  print(line: string): void;
}

export const DEFAULT_LOG_MAX_SIZE = "10M";
export const DEFAULT_LOG_KEEP = 5;
const OFF = /^(0|off)$/i;

/** Adds the options every command accepts. */
export function withGlobalOptions<T>(yargs: Argv<T>): Argv<T & GlobalArgs> {
  return yargs
    .option("log-level", { choices: LOG_LEVELS, default: "warn" as LogLevel, describe: "Log records at this level and above", global: true })
    .option("log-file", { type: "string", describe: "Append JSON log lines to this file instead of stderr (rotated: see --log-max-size)", global: true })
    .option("log-max-size", {
      type: "string",
      describe: `With --log-file: rotate it to FILE.<UTC time>-<pid> before it grows past this (default ${DEFAULT_LOG_MAX_SIZE}); 0 or off leaves rotation to logrotate`,
      global: true,
    })
    .option("as-job", { type: "string", hidden: true, global: true, describe: "The job this run belongs to (set by `run`), for the history" })
    .option("log-keep", { type: "number", describe: `With --log-file: rotated files kept (default ${DEFAULT_LOG_KEEP})`, global: true })
    .option("log-max-age", { type: "string", describe: "With --log-file: delete rotated files older than this (e.g. 30d); the file itself is rotated once its first line is this old", global: true });
}

/**
 * The log file's rotation from the global flags, or undefined without --log-file. Throws UsageError
 * naming the flag when a value is malformed, or when a rotation flag is given without --log-file.
 */
export function logRotation(args: GlobalArgs): LogFileOptions | undefined {
  const given = (["log-max-size", "log-keep", "log-max-age"] as const).filter((flag) => args[flag] !== undefined);
  if (args["log-file"] === undefined) {
    if (given.length > 0) throw new UsageError(`--${given[0]} applies to --log-file; give one`);
    return undefined;
  }
  const sizeText = args["log-max-size"] ?? DEFAULT_LOG_MAX_SIZE;
  const maxBytes = OFF.test(sizeText.trim()) ? undefined : byteSizeSetting(sizeText, "--log-max-size");
  if (maxBytes !== undefined && maxBytes < 1024) throw new UsageError(`--log-max-size: ${JSON.stringify(sizeText)} is less than 1k (0 or off turns rotation off)`);
  const ageText = args["log-max-age"];
  const maxAgeMs = ageText === undefined || OFF.test(ageText.trim()) ? undefined : parseDuration(ageText, "--log-max-age");
  const keep = args["log-keep"] ?? DEFAULT_LOG_KEEP;
  if (!Number.isInteger(keep) || keep < 1 || keep > 1000) throw new UsageError(`--log-keep: must be a whole number from 1 to 1000, got ${keep}`);
  if (maxBytes === undefined && maxAgeMs === undefined && args["log-keep"] !== undefined) {
    throw new UsageError("--log-keep: nothing is rotated with --log-max-size off and no --log-max-age");
  }
  return { maxBytes, maxAgeMs, keep };
}

/** The runtime of one command. Throws UsageError for a malformed log flag, NotFoundError or IoError when the log file cannot be opened. */
export function createRuntime(args: GlobalArgs): Runtime {
  return {
    logger: createLogger({ level: args["log-level"], file: args["log-file"], rotation: logRotation(args) }),
    print: (line) => {
      process.stdout.write(`${line}\n`);
    },
  };
}

let stopping: AbortController | undefined;

/** A second signal this soon after the first is the same request (a service manager signals the whole group, and `run` passes it on). */
const SAME_REQUEST_MS = 2_000;

/**
 * A signal that aborts on the first SIGTERM or SIGINT (its reason is the signal's name), for commands
 * that can stop between files and leave their target consistent. A second signal, more than two
 * seconds later, gets the default action: the process ends at once. Installed on first use, so other
 * commands keep the default behaviour throughout.
 */
export function stopSignal(): AbortSignal {
  if (stopping) return stopping.signal;
  const controller = new AbortController();
  stopping = controller;
  let first = 0;
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      if (performance.now() - first < SAME_REQUEST_MS) return;
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      process.kill(process.pid, name);
      return;
    }
    first = performance.now();
    process.stderr.write(`update-mirror: ${name}: finishing the files under way, then stopping (send it again to stop at once)\n`);
    controller.abort(name);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return controller.signal;
}
