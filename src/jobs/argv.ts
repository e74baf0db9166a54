// A job as the command line it stands for: the one place that maps job settings (config) to the verbs' flags.
import type { Job } from "../config/job-schema.js";
import type { Config } from "../config/schema.js";
import { UsageError } from "../core/errors.js";
import { bandwidthPeriodText } from "../wrap/bandwidth-schedule.js";

/** Adds `--flag value` once per value given. */
function flag(out: string[], name: string, value: string | number | readonly string[] | undefined): void {
  if (value === undefined) return;
  for (const v of Array.isArray(value) ? value : [value]) out.push(`--${name}`, String(v));
}

function toggle(out: string[], name: string, on: boolean | undefined): void {
  if (on === true) out.push(`--${name}`);
}

/** `select: { product: ["kes", "kav"] }` as the verbs take it: `--select product=kes,kav`. */
function selectFlags(out: string[], select: Partial<Record<string, string[]>> | undefined): void {
  for (const [tag, values] of Object.entries(select ?? {})) if (values && values.length > 0) out.push("--select", `${tag}=${values.join(",")}`);
}

/**
 * The argv (after the program name) that runs `job`. The config file, when given, is passed on for
 * what jobs share (network, passwords by reference, the `sync` section's defaults): a job is a
 * saved command line, so it is checked and run by exactly the code that runs that command.
 */
export function jobArgv(job: Job, configFile: string | undefined): string[] {
  const out: string[] = [job.type];
  switch (job.type) {
    case "sync":
    case "pull": {
      flag(out, "source", job.sources);
      if (job.type === "sync") {
        flag(out, "dest", job.dest);
        flag(out, "sign-key", job.signKey);
        flag(out, "passphrase-env", job.signKeyPassphraseEnv);
        flag(out, "passphrase-file", job.signKeyPassphraseFile);
        flag(out, "keep-generations", job.keepGenerations);
        flag(out, "expires", job.expires);
      } else {
        flag(out, "to", job.to);
        flag(out, "keep", job.keep);
      }
      flag(out, "trust", job.trust);
      flag(out, "include", job.include);
      flag(out, "exclude", job.exclude);
      selectFlags(out, job.select);
      flag(out, "concurrency", job.concurrency);
      flag(out, "retries", job.retries);
      flag(out, "max-delete", job.maxDelete);
      flag(out, "bwlimit", job.bandwidth);
      flag(out, "bwlimit-schedule", job.bandwidthSchedule?.map(bandwidthPeriodText));
      toggle(out, "allow-rollback", job.allowRollback);
      toggle(out, "allow-expired", job.allowExpired);
      flag(out, "config", configFile);
      break;
    }
    case "export":
      out.push(job.mirror);
      flag(out, "to", job.to);
      flag(out, "since", job.since);
      flag(out, "split-size", job.splitSize);
      toggle(out, "allow-rollback", job.allowRollback);
      break;
    case "import":
      out.push(job.medium);
      flag(out, "to", job.to);
      flag(out, "trust", job.trust);
      flag(out, "keep-generations", job.keepGenerations);
      toggle(out, "allow-rollback", job.allowRollback);
      toggle(out, "allow-expired", job.allowExpired);
      break;
  }
  return out;
}

/** Where a job's results live, for `status` and `history`: the mirror it writes (export: the mirror it reads), or the endpoint folder. */
export function jobTarget(job: Job): { kind: "mirror" | "endpoint"; path: string } {
  switch (job.type) {
    case "sync":
      return { kind: "mirror", path: job.dest };
    case "pull":
      return { kind: "endpoint", path: job.to };
    case "import":
      return { kind: "mirror", path: job.to };
    case "export":
      return { kind: "mirror", path: job.mirror };
  }
}

/** The job called `name`. Throws UsageError naming the config file and the jobs it has. */
export function jobNamed(config: Config, name: string, file: string | undefined): Job {
  const job = config.jobs[name];
  if (!job) throw new UsageError(`no job ${JSON.stringify(name)} in ${file ?? "the config"} (jobs: ${Object.keys(config.jobs).join(", ") || "none"})`);
  return job;
}
