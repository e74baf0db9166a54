// `rollback`: return a mirror to a retained previous generation (published as a new version).
import type { Argv, CommandModule } from "yargs";
import { loadSecretKey } from "../crypto/keys.js";
import { manifestSigner } from "../mirror/metadata.js";
import { parseDuration } from "../core/duration.js";
import { type PassphraseArgs, readPassphrase, withPassphraseOptions } from "../cli/passphrase.js";
import { createRuntime, type GlobalArgs } from "../cli/runtime.js";
import { DEFAULT_HTTP_OPTIONS } from "../net/http-options.js";

interface RollbackArgs extends GlobalArgs, PassphraseArgs {
  dest: string;
  to?: number | undefined;
  list: boolean;
  "sign-key"?: string | undefined;
  "keep-generations": number;
  expires?: string | undefined;
  json: boolean;
  "smb-password-env"?: string | undefined;
  "smb-password-file"?: string | undefined;
}

export const rollbackCommand: CommandModule<GlobalArgs, RollbackArgs> = {
  command: "rollback",
  describe: "Return a mirror to its previous generation (republished under a new version number)",
  builder: (yargs: Argv<GlobalArgs>) =>
    withPassphraseOptions(yargs)
      .option("dest", { type: "string", demandOption: true, describe: "The mirror: a folder or smb://[DOMAIN;]USER@host/share/path" })
      .option("smb-password-env", { type: "string", describe: "Environment variable holding the password of the user in an smb:// --dest" })
      .option("smb-password-file", { type: "string", describe: "File holding the password of the user in an smb:// --dest" })
      .option("to", { type: "number", describe: "The generation (manifest version) to return to; default the previous one" })
      .option("list", { type: "boolean", default: false, describe: "List the retained generations and change nothing" })
      .option("sign-key", { type: "string", describe: "Secret key to sign the new manifest (required when the mirror is signed)" })
      .option("keep-generations", { type: "number", default: 3, describe: "Previous generations to keep" })
      .option("expires", { type: "string", describe: "Lifetime of the new manifest, e.g. 7d" })
      .option("json", { type: "boolean", default: false, describe: "NDJSON events (or the list) on stdout" })
      .example("$0 rollback --dest /srv/mirror --sign-key /etc/update-mirror/mirror.key", "back to the previous generation")
      .example("$0 rollback --dest /srv/mirror --list", "which generations are kept"),
  handler: async (args) => {
    // Loaded on use, so `--help` and other commands do not pay for this command's dependencies.
    const [{ runRollback }, { openStore }, { createReporter }, { resolveSecret }] = await Promise.all([
      import("../engine/rollback.js"),
      import("../stores/registry.js"),
      import("../cli/reporters/reporter.js"),
      import("../config/secrets.js"),
    ]);
    const rt = createRuntime(args);
    const smbPassword = await resolveSecret({ env: args["smb-password-env"], file: args["smb-password-file"] }, "SMB password");
    const store = openStore(args.dest, { http: DEFAULT_HTTP_OPTIONS, smbPassword });
    try {
      if (args.list) {
        const versions = await store.generations();
        const rows = await Promise.all(versions.map(async (v) => ({ version: v, manifest: await store.readGeneration(v) })));
        if (args.json) rt.print(JSON.stringify(rows.map((r) => ({ version: r.version, created: r.manifest.created, files: r.manifest.files.length, upstream: r.manifest.origin.upstream ?? null, upstreamVersion: r.manifest.origin.upstreamVersion ?? null }))));
        else if (rows.length === 0) rt.print(`${args.dest}: no previous generation is retained`);
        else for (const r of rows) rt.print(`version ${r.version}  created ${r.manifest.created}  ${r.manifest.files.length} files${r.manifest.origin.upstreamVersion === undefined ? "" : `  upstream version ${r.manifest.origin.upstreamVersion}`}`);
        return;
      }
      const key = args["sign-key"] === undefined ? undefined : await loadSecretKey(args["sign-key"], await readPassphrase(args));
      await runRollback({
        store,
        keepGenerations: args["keep-generations"],
        emit: createReporter({ json: args.json, verbose: false, logger: rt.logger }),
        ...(args.to !== undefined && { toVersion: args.to }),
        ...(key && { sign: manifestSigner(key) }),
        ...(args.expires !== undefined && { expiresInMs: parseDuration(args.expires, "--expires") }),
      });
    } finally {
      await store.close?.();
    }
  },
};
