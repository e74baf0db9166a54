// `import`: bring a medium (an exported folder, a .zip/.tar archive or its volumes, whole or a delta) into a mirror, verified before anything changes.
import type { Argv, CommandModule } from "yargs";
import { createRuntime, type GlobalArgs } from "../cli/runtime.js";
import { RefusedPlanError } from "../core/errors.js";
import type { TargetFile } from "../engine/plan.js";
import type { DeltaInfo } from "../mirror/delta.js";

interface ImportArgs extends GlobalArgs {
  medium: string;
  to: string;
  trust?: string[] | undefined;
  "allow-rollback": boolean;
  "allow-expired": boolean;
  "keep-generations": number;
  "dry-run": boolean;
  json: boolean;
  verbose: boolean;
}

/**
 * For a delta: every file the target lacks must be one the delta carries, or the import stops
 * before anything changes, saying which version the delta needs.
 */
export function deltaBaseCheck(delta: DeltaInfo, medium: string, dest: string) {
  const carried = new Set(delta.files);
  return (missing: readonly TargetFile[], committedVersion: number | undefined): void => {
    const lacking = missing.filter((f) => !carried.has(f.path));
    if (lacking.length === 0) return;
    const at = committedVersion === undefined ? "holds no mirror yet" : `is at version ${committedVersion}`;
    throw new RefusedPlanError(
      `${medium} is a delta from version ${delta.baseVersion} to ${delta.version}, but ${dest} ${at} and lacks ${lacking.length} file(s) the delta does not carry (first: ${lacking[0]?.path}). Import version ${delta.baseVersion} first (the media in between, or a full export); nothing was changed`,
    );
  };
}

export const importCommand: CommandModule<GlobalArgs, ImportArgs> = {
  command: "import <medium>",
  describe: "Bring an exported medium (folder, .zip/.tar, volumes, or a delta) into a mirror, verifying every byte first",
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .positional("medium", { type: "string", demandOption: true, describe: "The medium: a folder, FILE.zip, FILE.tar, or FILE.tar.001 of a split set" })
      .option("to", { type: "string", demandOption: true, describe: "The mirror folder to update" })
      .option("trust", { type: "string", array: true, describe: "Public key the medium's manifest must be signed with (repeatable); unsigned media are then refused" })
      .option("allow-rollback", { type: "boolean", default: false, describe: "Accept a medium older than the mirror" })
      .option("allow-expired", { type: "boolean", default: false, describe: "Accept a medium whose manifest has expired" })
      .option("keep-generations", { type: "number", default: 3, describe: "Previous generations kept for rollback" })
      .option("dry-run", { type: "boolean", default: false, describe: "Verify the medium's manifest and print the plan, change nothing" })
      .option("json", { type: "boolean", default: false, describe: "NDJSON events on stdout" })
      .option("verbose", { alias: "v", type: "boolean", default: false, describe: "A line per file" })
      .example("$0 import /media/usb --to /srv/inside-mirror --trust dmz.pub", "a folder medium")
      .example("$0 import /media/usb/delta.zip --to /srv/inside-mirror --trust dmz.pub", "a delta archive"),
  handler: async (args) => {
    const rt = createRuntime(args);
    // Loaded on use, so `--help` and other commands do not pay for every source kind and the engine.
    const [{ loadPublicKey }, { DELTA_NAME, parseDelta }, { METADATA_DIR }, { openMediumSource }, { runReplica }] = await Promise.all([
      import("../crypto/keys.js"),
      import("../mirror/delta.js"),
      import("../mirror/layout.js"),
      import("../sources/registry.js"),
      import("./replica.js"),
    ]);
    const trustKeys = await Promise.all((args.trust ?? []).map((file) => loadPublicKey(file)));
    if (trustKeys.length === 0) rt.logger.warn({ medium: args.medium }, "importing without --trust: where the medium came from is not checked");
    const source = await openMediumSource(args.medium);
    try {
      const deltaBytes = await source.readMetadata?.(DELTA_NAME);
      const delta = deltaBytes === undefined ? undefined : parseDelta(deltaBytes, `${args.medium}: ${METADATA_DIR}/${DELTA_NAME}`);
      await runReplica(
        {
          source,
          dest: args.to,
          trustKeys,
          allowRollback: args["allow-rollback"],
          allowExpired: args["allow-expired"],
          keepGenerations: args["keep-generations"],
          dryRun: args["dry-run"],
          json: args.json,
          verbose: args.verbose,
          record: { command: "import", job: args["as-job"] },
          ...(delta && { checkPlan: deltaBaseCheck(delta, args.medium, args.to) }),
        },
        rt,
      );
    } finally {
      await source.close();
    }
  },
};
