// `history`: the runs recorded in a mirror's or endpoint's private folder, for one job or one destination.
import type { Argv, CommandModule } from "yargs";
import { formatBytes } from "../cli/format.js";
import { createRuntime, type GlobalArgs } from "../cli/runtime.js";
import { CONFIG_FLAG_HELP } from "../config/paths.js";
import { UsageError } from "../core/errors.js";
import type { RunRecord } from "../core/store.js";

interface HistoryArgs extends GlobalArgs {
  dest?: string | undefined;
  job?: string | undefined;
  config?: string | undefined;
  last: number;
  json: boolean;
}

/** One run as a line: when, what, how it ended, and what changed. */
export function runLine(r: RunRecord): string {
  const seconds = Math.max(0, Math.round((Date.parse(r.finished) - Date.parse(r.started)) / 1000));
  const parts = [r.started, r.command ?? "sync", ...(r.job === undefined ? [] : [`[${r.job}]`]), r.result.toUpperCase()];
  if (r.version !== undefined) parts.push(`version ${r.version}${r.upstreamVersion === undefined ? "" : ` (upstream ${r.upstreamVersion})`}`);
  if (r.source !== undefined) parts.push(`from ${r.source}`);
  if (r.added !== undefined) parts.push(`+${r.added} ~${r.updated ?? 0} -${r.removed ?? 0}${r.failed ? ` !${r.failed}` : ""}`);
  if (r.bytes !== undefined) parts.push(formatBytes(r.bytes));
  parts.push(`${seconds}s`);
  if (r.error) parts.push(`- ${r.error.code}: ${r.error.message.split("\n")[0]}`);
  return parts.join("  ");
}

export const historyCommand: CommandModule<GlobalArgs, HistoryArgs> = {
  command: "history",
  describe: "List the runs recorded for a job or a destination, newest last",
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .option("job", { type: "string", describe: "A job of the config file: its runs, from its mirror or endpoint" })
      .option("dest", { type: "string", describe: "A mirror (folder or smb://) or endpoint folder: every run recorded there" })
      .option("config", { type: "string", describe: CONFIG_FLAG_HELP })
      .option("last", { type: "number", default: 20, describe: "How many runs to show (0: all)" })
      .option("json", { type: "boolean", default: false, describe: "One JSON object per run (NDJSON)" })
      .example("$0 history --job nightly-sync --last 20", "the last 20 runs of a job")
      .example("$0 history --dest /srv/mirror --json", "every run recorded at a mirror, for scripts"),
  handler: async (args) => {
    const [{ loadConfigOrDefault }, { openTarget }, { jobNamed, jobTarget }] = await Promise.all([import("../config/load.js"), import("./target-store.js"), import("../jobs/argv.js")]);
    const rt = createRuntime(args);
    if ((args.job === undefined) === (args.dest === undefined)) throw new UsageError("give either --job NAME or --dest PATH");
    if (!Number.isInteger(args.last) || args.last < 0) throw new UsageError(`--last: must be a whole number, got ${args.last}`);
    const { config, file } = await loadConfigOrDefault(args.config, args.job !== undefined);
    let target: { path: string; kind?: "mirror" | "endpoint" };
    if (args.job !== undefined) {
      target = jobTarget(jobNamed(config, args.job, file));
    } else target = { path: args.dest as string };
    const { store } = await openTarget(target.path, config, target.kind);
    let records: RunRecord[];
    try {
      records = await store.readHistory();
    } finally {
      await store.close?.();
    }
    if (args.job !== undefined) records = records.filter((r) => r.job === args.job);
    if (args.last > 0) records = records.slice(-args.last);
    if (args.json) for (const r of records) rt.print(JSON.stringify(r));
    else if (records.length === 0) rt.print(`no runs recorded${args.job === undefined ? ` at ${store.label}` : ` for job ${args.job} (at ${store.label})`}`);
    else for (const r of records) rt.print(runLine(r));
  },
};
