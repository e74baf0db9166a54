// `verify`: re-hash a mirror against its manifest and report every problem; exit 0 only when all is well.
import type { Argv, CommandModule } from "yargs";
import { IntegrityError } from "../core/errors.js";
import { loadPublicKey } from "../crypto/keys.js";
import type { VerifyReport } from "../mirror/verify-tree.js";
import { formatBytes } from "../cli/format.js";
import { createRuntime, type GlobalArgs } from "../cli/runtime.js";
import { withWorkersOption, type WorkersArgs, workersOption } from "../cli/workers.js";

interface VerifyArgs extends GlobalArgs, WorkersArgs {
  dir: string;
  pubkey?: string | undefined;
  json: boolean;
}

/** Number of problems in a report (each missing/corrupt/unlisted file, bad signature, SHA256SUMS line). */
export function problemCount(report: VerifyReport): number {
  const sig = report.signature.status === "invalid" || report.signature.status === "missing" ? 1 : 0;
  return report.missing.length + report.corrupt.length + report.unlisted.length + report.unsupported.length + report.sums.length + sig;
}

function reportLines(report: VerifyReport): string[] {
  return [
    ...(report.signature.detail ? [`SIGNATURE ${report.signature.status}: ${report.signature.detail}`] : []),
    ...report.missing.map((p) => `MISSING   ${p}`),
    ...report.corrupt.map((c) => `CORRUPT   ${c.path}: ${c.reason}`),
    ...report.unlisted.map((p) => `UNLISTED  ${p}`),
    ...report.unsupported.map((p) => `UNSUPPORTED ${p}`),
    ...report.sums.map((p) => `SUMS      ${p}`),
  ];
}

export const verifyCommand: CommandModule<GlobalArgs, VerifyArgs> = {
  command: "verify <dir>",
  describe: "Re-hash a mirror against its manifest; report missing, corrupt and unlisted files and bad signatures",
  builder: (yargs: Argv<GlobalArgs>) =>
    withWorkersOption(yargs)
      .positional("dir", { type: "string", demandOption: true, describe: "The mirror root" })
      .option("pubkey", { type: "string", describe: "Public key (minisign format) the manifest must be signed with" })
      .option("json", { type: "boolean", default: false, describe: "Print the full report as JSON" })
      .example("$0 verify ./mirror --pubkey ./keys/mirror.pub", "check every byte and the signature")
      .example("$0 verify ./mirror --json | jq .corrupt", "machine-readable report"),
  handler: async (args) => {
    // Loaded on use, so `--help` and other commands do not pay for this command's dependencies.
    const { verifyTree } = await import("../mirror/verify-tree.js");
    const rt = createRuntime(args);
    const publicKey = args.pubkey === undefined ? undefined : await loadPublicKey(args.pubkey);
    const report = await verifyTree(args.dir, {
      ...(publicKey && { publicKey }),
      ...workersOption(args),
    });
    const problems = problemCount(report);
    rt.logger.info({ event: "verify:done", root: args.dir, version: report.version, ok: report.ok, problems }, "verify finished");
    if (args.json) rt.print(JSON.stringify(report));
    else {
      for (const line of reportLines(report)) rt.print(line);
      if (report.signature.status === "not-checked") rt.print("note: signature not checked (give --pubkey to check it)");
      if (report.expired) rt.print(`note: the manifest expired at ${report.expires}`);
      rt.print(
        `verified ${args.dir}: version ${report.version}, ${report.checkedFiles} files, ${formatBytes(report.checkedBytes)} hashed: ${report.ok ? "OK" : `${problems} problem${problems === 1 ? "" : "s"}`}`,
      );
    }
    if (!report.ok) throw new IntegrityError(`${args.dir}: verification failed with ${problems} problem${problems === 1 ? "" : "s"}`);
  },
};
