// `export`: copy a mirror onto removable media — a folder that is itself a mirror, or one .zip/.tar archive, whole or a delta.
import type { Argv, CommandModule } from "yargs";
import { createRuntime, type GlobalArgs, type Runtime } from "../cli/runtime.js";
import type { RunRecord } from "../core/store.js";
import type { RunSummary } from "../engine/events.js";
import { UsageError } from "../core/errors.js";
import { byteSizeSetting } from "../core/size.js";

interface ExportArgs extends GlobalArgs {
  mirror: string;
  to: string;
  since?: string | undefined;
  "split-size"?: string | undefined;
  "allow-rollback": boolean;
  "dry-run": boolean;
  json: boolean;
  verbose: boolean;
}

/** The archive format a --to path names by its extension, or undefined for a folder. */
export function archiveFormatOf(path: string): "zip" | "tar" | undefined {
  const lower = path.toLowerCase();
  if (lower.endsWith(".zip")) return "zip";
  if (lower.endsWith(".tar")) return "tar";
  return undefined;
}


export const exportCommand: CommandModule<GlobalArgs, ExportArgs> = {
  command: "export <mirror>",
  describe: "Copy a mirror onto removable media: a folder (itself a mirror) or a .zip/.tar archive, whole or only what changed",
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .positional("mirror", { type: "string", demandOption: true, describe: "The mirror folder to export" })
      .option("to", { type: "string", demandOption: true, describe: "A folder on the medium, or FILE.zip / FILE.tar" })
      .option("since", { type: "string", describe: "Only what changed since this version (a number) or this manifest file: a delta archive" })
      .option("split-size", { type: "string", describe: "Split an archive into volumes of at most this size (e.g. 4G for FAT32, 4480M for a DVD)" })
      .option("allow-rollback", { type: "boolean", default: false, describe: "Overwrite a folder medium holding a newer version" })
      .option("dry-run", { type: "boolean", default: false, describe: "Print what would be copied, change nothing" })
      .option("json", { type: "boolean", default: false, describe: "NDJSON events on stdout" })
      .option("verbose", { alias: "v", type: "boolean", default: false, describe: "A line per file" })
      .example("$0 export /srv/mirror --to /media/usb", "the medium becomes a mirror; running it again updates it in place")
      .example("$0 export /srv/mirror --to /media/usb/delta.zip --since 41", "only what changed since version 41, in one archive")
      .example("$0 export /srv/mirror --to /media/usb/full.tar --split-size 4G", "volumes that fit FAT32"),
  handler: async (args) => {
    const rt = createRuntime(args);
    const started = new Date().toISOString();
    // Recorded in the source mirror's history (the medium leaves). A folder store appends one line, so no
    // lock of the mirror is needed and an export never stops a scheduled sync.
    const record = async (result: RunRecord["result"], summary?: RunSummary, error?: unknown) => {
      if (args["dry-run"]) return;
      const [{ createFolderStore }, { runRecord }] = await Promise.all([import("../stores/folder.js"), import("../engine/run-record.js")]);
      const entry = runRecord({ command: "export", job: args["as-job"] }, started, new Date().toISOString(), result, summary, error);
      await createFolderStore(args.mirror).appendHistory(entry).catch((err: unknown) => {
        rt.logger.warn({ err }, "the export could not be recorded in the mirror's history");
      });
    };
    try {
      const summary = await exportOnce(args, rt);
      await record(summary.result === "dry-run" ? "unchanged" : summary.result, summary);
    } catch (err) {
      await record("failed", undefined, err);
      throw err;
    }
  },
};

/** One export as the flags say: a folder medium, or an archive. Throws what they throw. */
async function exportOnce(args: ExportArgs, rt: Runtime): Promise<RunSummary> {
  const format = archiveFormatOf(args.to);
  const splitSize = args["split-size"] === undefined ? undefined : byteSizeSetting(args["split-size"], "--split-size");
  if (format === undefined) {
    if (args.since !== undefined) throw new UsageError(`--since: a delta is written as one archive; give --to a FILE.zip or FILE.tar (got ${args.to})`);
    if (splitSize !== undefined) throw new UsageError(`--split-size: only archives are split; give --to a FILE.zip or FILE.tar (got ${args.to})`);
    const { exportToFolder } = await import("./export-folder.js");
    return exportToFolder({ mirror: args.mirror, to: args.to, allowRollback: args["allow-rollback"], dryRun: args["dry-run"], json: args.json, verbose: args.verbose }, rt);
  }
  const { exportToArchive } = await import("./export-archive.js");
  return exportToArchive(
    { mirror: args.mirror, to: args.to, format, ...(splitSize !== undefined && { splitSize }), ...(args.since !== undefined && { since: args.since }), dryRun: args["dry-run"], json: args.json, verbose: args.verbose },
    rt,
  );
}
