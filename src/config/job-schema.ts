// The config file's named jobs: each a saved sync, export, import or pull with its schedule, hooks and limits.
import { Cron } from "croner";
import { z } from "zod";
import { TAG_KEYS } from "../core/manifest.js";

export const duration = z.string().regex(/^0*[1-9]\d*[smhdw]$/, "must be a duration like 90s, 30m, 12h, 7d or 2w (more than zero)");
export const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name");
export const rate = z.string().regex(/^\d+(\.\d+)?[kKmMgG]?$/, "must be bytes per second, e.g. 500k, 10M");
const nonEmpty = z.string().min(1);
const list = z.array(nonEmpty);

const cron = z.string().refine(
  (expression) => {
    try {
      new Cron(expression, { paused: true }).stop();
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be a cron expression: "MIN HOUR DAY MONTH WEEKDAY" (e.g. "30 2 * * *"), optionally with seconds first, or a nickname like @daily' },
);

const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "must be a time of day, HH:MM (24 h)");
const DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;

/** One period of a bandwidth timetable: on these days, between `from` and `to` (local time), cap at `rate` ("0" or "off": no cap). */
export const bandwidthPeriodSchema = z
  .object({
    days: z
      .array(z.enum(DAY_NAMES))
      .min(1)
      .optional()
      .describe("Days the period applies to (default every day)"),
    from: clock,
    to: clock.describe("End of the period; earlier than `from` means it runs past midnight"),
    rate: z.union([rate, z.literal("off")]).describe("The cap in this period, or \"off\""),
  })
  .strict();

/** What every kind of job may set besides its own options. */
const jobCommon = {
  description: z.string().max(500).optional(),
  schedule: cron.optional().describe("When `daemon` runs the job: a cron expression in local time"),
  randomDelay: duration.optional().describe("Up to this long a scheduled run waits first, at random, so a fleet does not start at the same second"),
  hooks: z
    .object({
      onSuccess: nonEmpty.optional().describe("Shell command after a run that ended updated or unchanged"),
      onChange: nonEmpty.optional().describe("Shell command after a run that changed the target"),
      onFailure: nonEmpty.optional().describe("Shell command after a run that failed or was partial"),
      timeout: duration.optional().describe("Longest a hook may run (default 5m)"),
    })
    .strict()
    .optional(),
  nice: z.number().int().min(0).max(19).optional().describe("CPU priority hint: 0 (normal) to 19 (lowest); applied to the job's process"),
  warn: duration.optional().describe("`status` says WARNING when the job's data is at least this old (default 3d)"),
  crit: duration.optional().describe("`status` says CRITICAL when the job's data is at least this old (default 7d)"),
};

/** Options shared by the jobs that fetch (sync, pull): flags of the same name, in camelCase. */
const fetchOptions = {
  sources: z.array(nonEmpty).min(1).describe("Upstreams in priority order"),
  trust: list.optional().describe("Public keys (minisign format); the upstream manifest must be signed by one of them"),
  include: list.optional(),
  exclude: list.optional(),
  select: z.partialRecord(z.enum(TAG_KEYS), z.array(nonEmpty).min(1)).optional().describe("Only files whose tags have one of these values"),
  concurrency: z.number().int().min(1).max(64).optional(),
  retries: z.number().int().min(0).max(20).optional(),
  maxDelete: z.string().regex(/^(\d+|\d+(\.\d+)?%)$/, "must be a count (25) or a percentage (10%)").optional(),
  allowRollback: z.boolean().optional(),
  allowExpired: z.boolean().optional(),
  bandwidth: rate.optional().describe("Cap on the job's transfer rate, bytes per second"),
  bandwidthSchedule: z.array(bandwidthPeriodSchema).optional().describe("Caps by time of day; the first period that matches wins, `bandwidth` applies outside them"),
};

export const syncJobSchema = z
  .object({
    type: z.literal("sync"),
    ...jobCommon,
    ...fetchOptions,
    dest: nonEmpty.describe("The mirror: a folder or smb://[DOMAIN;]USER@host/share/path"),
    signKey: nonEmpty.optional(),
    signKeyPassphraseEnv: envName.optional(),
    signKeyPassphraseFile: nonEmpty.optional(),
    keepGenerations: z.number().int().min(0).max(100).optional(),
    expires: duration.optional(),
  })
  .strict();

export const pullJobSchema = z
  .object({
    type: z.literal("pull"),
    ...jobCommon,
    ...fetchOptions,
    to: nonEmpty.describe("The endpoint folder (a link to the current set, managed by pull)"),
    keep: z.number().int().min(0).max(100).optional(),
  })
  .strict();

export const exportJobSchema = z
  .object({
    type: z.literal("export"),
    ...jobCommon,
    mirror: nonEmpty.describe("The mirror folder to export"),
    to: nonEmpty.describe("A folder on the medium, or FILE.zip / FILE.tar"),
    since: z.union([z.number().int().min(1), nonEmpty]).optional().describe("Only what changed since this version or manifest file (archives)"),
    splitSize: z.string().regex(/^\d+(\.\d+)?[kKmMgGtT]?$/, "must be a size like 4G or 4480M").optional(),
    allowRollback: z.boolean().optional(),
  })
  .strict();

export const importJobSchema = z
  .object({
    type: z.literal("import"),
    ...jobCommon,
    medium: nonEmpty.describe("The medium: a folder, FILE.zip / FILE.tar (or the first volume)"),
    to: nonEmpty.describe("The mirror folder to update"),
    trust: list.optional(),
    keepGenerations: z.number().int().min(0).max(100).optional(),
    allowRollback: z.boolean().optional(),
    allowExpired: z.boolean().optional(),
  })
  .strict();

export const jobSchema = z.discriminatedUnion("type", [syncJobSchema, pullJobSchema, exportJobSchema, importJobSchema]);

/** Job names become file and unit names (history, systemd), so they are kept plain. */
export const jobName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "job names are 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit");

export type Job = z.output<typeof jobSchema>;
export type JobType = Job["type"];
