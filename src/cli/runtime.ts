// What every command handler gets: the logger, the output stream, and the options all commands share.
import type { Logger } from "pino";
import type { Argv } from "yargs";
import { createLogger, LOG_LEVELS, type LogLevel } from "./logger.js";

export interface GlobalArgs {
  "log-level": LogLevel;
  "log-file"?: string | undefined;
}

export interface Runtime {
  logger: Logger;
  /** Writes one line of command output to stdout. */
  print(line: string): void;
}

/** Adds the options every command accepts. */
export function withGlobalOptions<T>(yargs: Argv<T>): Argv<T & GlobalArgs> {
  return yargs
    .option("log-level", { choices: LOG_LEVELS, default: "warn" as LogLevel, describe: "Log records at this level and above", global: true })
    .option("log-file", { type: "string", describe: "Append JSON log lines to this file instead of stderr", global: true });
}

export function createRuntime(args: GlobalArgs): Runtime {
  return {
    logger: createLogger({ level: args["log-level"], file: args["log-file"] }),
    print: (line) => {
      process.stdout.write(`${line}\n`);
    },
  };
}
