// The --workers option shared by commands that hash files.
import type { Argv } from "yargs";
import { UsageError } from "../core/errors.js";

export interface WorkersArgs {
  workers?: number | undefined;
}

export function withWorkersOption<T>(yargs: Argv<T>): Argv<T & WorkersArgs> {
  return yargs.option("workers", { type: "number", describe: "Hashing threads (default: one per core)" }).check((a) => {
    const n = a.workers;
    if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > 64)) throw new UsageError(`--workers: must be a whole number from 1 to 64, got ${n}`);
    return true;
  });
}

/** The hashing options a command passes on: only what the user set. */
export function workersOption(args: WorkersArgs): { workers?: number } {
  return args.workers === undefined ? {} : { workers: args.workers };
}
