// The log settings of `run` and `daemon`: flags first, then the config's `logging`, then defaults; and the same flags for the job's child.
import type { GlobalArgs } from "../cli/runtime.js";
import type { Config } from "../config/schema.js";

/** The level a job logs at when neither a flag nor the config says: the run's start, end and hooks. */
const JOB_LOG_LEVEL = "info";
/** yargs' default for --log-level, which a job's settings may override. */
const FLAG_DEFAULT_LEVEL = "warn";

/**
 * Global args for this process's runtime, and the log flags a job's child gets so both write one log
 * with one rotation policy. A flag given differently from its default wins over the config.
 */
export function jobLogging(args: GlobalArgs, config: Config): { args: GlobalArgs; childArgs: string[] } {
  const logging = config.logging;
  const level = args["log-level"] !== FLAG_DEFAULT_LEVEL ? args["log-level"] : (logging.level ?? JOB_LOG_LEVEL);
  const file = args["log-file"] ?? logging.file;
  const maxSize = args["log-max-size"] ?? logging.maxSize;
  const keep = args["log-keep"] ?? logging.keep;
  const maxAge = args["log-max-age"] ?? logging.maxAge;
  const resolved: GlobalArgs = {
    "log-level": level,
    ...(file !== undefined && { "log-file": file }),
    ...(file !== undefined && maxSize !== undefined && { "log-max-size": maxSize }),
    ...(file !== undefined && keep !== undefined && { "log-keep": keep }),
    ...(file !== undefined && maxAge !== undefined && { "log-max-age": maxAge }),
  };
  const childArgs = ["--log-level", level];
  if (resolved["log-file"] !== undefined) childArgs.push("--log-file", resolved["log-file"]);
  if (resolved["log-max-size"] !== undefined) childArgs.push("--log-max-size", resolved["log-max-size"]);
  if (resolved["log-keep"] !== undefined) childArgs.push("--log-keep", String(resolved["log-keep"]));
  if (resolved["log-max-age"] !== undefined) childArgs.push("--log-max-age", resolved["log-max-age"]);
  return { args: resolved, childArgs };
}
