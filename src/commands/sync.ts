// `sync`: bring a mirror folder up to date from an ordered list of upstreams, verified and published atomically.
import type { Argv, CommandModule } from "yargs";
import { manifestSigner } from "../mirror/metadata.js";
import { limitSource } from "../wrap/bandwidth.js";
import { DEFAULT_RETRY } from "../wrap/retry.js";
import { type PassphraseArgs, withPassphraseOptions } from "../cli/passphrase.js";
import { wholeNumber, withTransferOptions } from "../cli/transfer-options.js";
import { createRuntime, type GlobalArgs, stopSignal } from "../cli/runtime.js";
import { rateLimiterFor, resolveSyncSettings, type SyncFlags } from "../cli/sync-settings.js";
import { PartialError } from "../core/errors.js";

interface SyncArgs extends GlobalArgs, PassphraseArgs, SyncFlags {
  config?: string | undefined;
  "dry-run": boolean;
  "allow-rollback": boolean;
  "allow-expired": boolean;
  json: boolean;
  verbose: boolean;
}

export const syncCommand: CommandModule<GlobalArgs, SyncArgs> = {
  command: "sync",
  describe: "Bring a mirror folder up to date from upstream sources (failover in the order given)",
  builder: (yargs: Argv<GlobalArgs>) =>
    withTransferOptions(withPassphraseOptions(yargs))
      .option("source", { type: "string", array: true, describe: "Upstream (http(s)://, ftp(s)://, smb://, file:// or a folder); repeat for failover, first = preferred" })
      .option("dest", { type: "string", describe: "The mirror folder to update" })
      .option("config", { type: "string", describe: "Config file (sync, network and tags sections); flags override it" })
      .option("trust", { type: "string", array: true, describe: "Public key the upstream manifest must be signed with (repeatable)" })
      .option("sign-key", { type: "string", describe: "Secret key to sign our manifest with" })
      .option("keep-generations", { type: "number", coerce: wholeNumber("keep-generations", 0, 100), describe: "Previous generations kept for rollback (default 3)" })
      .option("expires", { type: "string", describe: "Our manifest's lifetime, e.g. 7d" })
      .example("$0 sync --source https://updates.example/av/ --source /mnt/backup --dest /srv/mirror", "failover between two upstreams")
      .example("$0 sync --config /etc/update-mirror/config.json --dry-run", "what would change, and how many bytes")
      .example("$0 sync --source https://up/ --dest /srv/mirror --trust vendor.pub --sign-key mirror.key", "verify the upstream, sign ours"),
  handler: async (args) => {
    // Loaded on use, so `--help` and other commands do not pay for this command's dependencies.
    const [{ defaultConfig }, { runSync }, { openSources }, { openStore }, { createReporter }] = await Promise.all([
      import("../config/defaults.js"),
      import("../engine/sync.js"),
      import("../sources/registry.js"),
      import("../stores/registry.js"),
      import("../cli/reporters/reporter.js"),
    ]);
    const rt = createRuntime(args);
    // The schema (zod) is loaded only to check a config file: a few MB of heap a run without one never needs.
    const config = args.config === undefined ? defaultConfig() : await (await import("../config/load.js")).loadConfigFile(args.config);
    const settings = await resolveSyncSettings(args, config);
    const opened = openSources(settings.sources, settings.http, { ...(settings.ftp && { ftp: settings.ftp }), ...(settings.smb && { smb: settings.smb }) });
    const limiter = rateLimiterFor(settings);
    const store = openStore(settings.dest, { http: settings.http, smbPassword: settings.smb?.password });
    try {
      const summary = await runSync({
        sources: limiter ? opened.sources.map((s) => limitSource(s, limiter)) : opened.sources,
        store,
        selection: settings.selection,
        tagRules: config.tags,
        trust: { keys: settings.trustKeys, allowRollback: args["allow-rollback"], allowExpired: args["allow-expired"] },
        dryRun: args["dry-run"],
        concurrency: settings.concurrency,
        retry: { ...DEFAULT_RETRY, attempts: settings.retries + 1 },
        maxDelete: settings.maxDelete,
        keepGenerations: settings.keepGenerations,
        emit: createReporter({ json: args.json, verbose: args.verbose, logger: rt.logger }),
        record: { command: "sync", job: args["as-job"] },
        signal: stopSignal(),
        ...(settings.signingKey && { sign: manifestSigner(settings.signingKey) }),
        ...(settings.expiresInMs !== undefined && { expiresInMs: settings.expiresInMs }),
      });
      if (summary.result === "partial") {
        throw new PartialError(`${summary.failed} file(s) could not be fetched from any source: they kept their previous version and nothing was removed; the next run tries them again`);
      }
    } finally {
      await Promise.all([opened.close(), store.close?.()]);
    }
  },
};
