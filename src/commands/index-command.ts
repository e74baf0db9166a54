// `index`: hash a folder and write its manifest, SHA256SUMS and (with --key) signature.
import type { Argv, CommandModule } from "yargs";
import { parseExpiry } from "../core/duration.js";
import { totalBytes } from "../core/manifest.js";
import { keyIdHex } from "../crypto/minisign.js";
import { loadSecretKey, secretKeyPermissionWarning } from "../crypto/keys.js";
import { formatBytes, formatRate, formatSeconds } from "../cli/format.js";
import { type PassphraseArgs, readPassphrase, withPassphraseOptions } from "../cli/passphrase.js";
import { createRuntime, type GlobalArgs } from "../cli/runtime.js";
import { withWorkersOption, type WorkersArgs, workersOption } from "../cli/workers.js";

interface IndexArgs extends GlobalArgs, PassphraseArgs, WorkersArgs {
  dir: string;
  key?: string | undefined;
  config?: string | undefined;
  expires?: string | undefined;
  json: boolean;
}

export const indexCommand: CommandModule<GlobalArgs, IndexArgs> = {
  command: "index <dir>",
  describe: "Hash every file of a folder and write .update-mirror/manifest.json, SHA256SUMS and a signature",
  builder: (yargs: Argv<GlobalArgs>) =>
    withWorkersOption(withPassphraseOptions(yargs))
      .positional("dir", { type: "string", demandOption: true, describe: "The folder to index (the mirror root)" })
      .option("key", { type: "string", describe: "Secret key to sign the manifest with (from keygen, or minisign -G -W)" })
      .option("config", { type: "string", describe: "Config file with tag rules (see config/example.config.json)" })
      .option("expires", { type: "string", describe: "Manifest expiry: a duration (30d) or a UTC date" })
      .option("json", { type: "boolean", default: false, describe: "Print the result as JSON" })
      .example("$0 index ./mirror --key ./keys/mirror.key", "index and sign")
      .example("$0 index ./mirror --config ./update-mirror.json --expires 30d", "tag files from globs; expire in 30 days"),
  handler: async (args) => {
    // Loaded on use, so `--help` and other commands do not pay for this command's dependencies.
    const [{ defaultConfig, loadConfigFile }, { indexTree }] = await Promise.all([import("../config/load.js"), import("../mirror/index-tree.js")]);
    const rt = createRuntime(args);
    const now = new Date();
    const config = args.config === undefined ? defaultConfig() : await loadConfigFile(args.config);
    const expires = args.expires === undefined ? undefined : parseExpiry(args.expires, "--expires", now);
    let signingKey: Awaited<ReturnType<typeof loadSecretKey>> | undefined;
    if (args.key !== undefined) {
      signingKey = await loadSecretKey(args.key, await readPassphrase(args));
      const warning = await secretKeyPermissionWarning(args.key);
      if (warning) rt.logger.warn({ event: "key:permissions", file: args.key }, warning);
    }
    const started = performance.now();
    const result = await indexTree(args.dir, {
      tagRules: config.tags,
      now,
      ...(signingKey && { signingKey }),
      ...(expires && { expires }),
      ...workersOption(args),
    });
    const elapsedMs = performance.now() - started;
    const bytes = totalBytes(result.manifest);
    const summary = {
      root: args.dir,
      version: result.manifest.version,
      previousVersion: result.previousVersion ?? null,
      files: result.manifest.files.length,
      bytes,
      signed: result.signed,
      keyId: signingKey ? keyIdHex(signingKey.keyId) : null,
      expires: result.manifest.expires ?? null,
      elapsedMs: Math.round(elapsedMs),
    };
    rt.logger.info({ event: "index:done", ...summary }, "index committed");
    if (args.json) {
      rt.print(JSON.stringify(summary));
      return;
    }
    rt.print(`indexed ${args.dir}: ${summary.files} files, ${formatBytes(bytes)} in ${formatSeconds(elapsedMs)} (${formatRate(bytes, elapsedMs)})`);
    rt.print(`manifest version ${summary.version}${result.previousVersion === undefined ? " (new mirror)" : ` (was ${result.previousVersion})`}, ${summary.signed ? `signed by key ID ${summary.keyId}` : "unsigned"}${summary.expires ? `, expires ${summary.expires}` : ""}`);
  },
};
