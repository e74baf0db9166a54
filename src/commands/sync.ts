// `sync`: bring a mirror folder up to date from an ordered list of upstreams, verified and published atomically.
import type { Argv, CommandModule } from "yargs";
import { manifestSigner } from "../mirror/metadata.js";
import { createRateLimiter, limitSource } from "../wrap/bandwidth.js";
import { DEFAULT_RETRY } from "../wrap/retry.js";
import { type PassphraseArgs, withPassphraseOptions } from "../cli/passphrase.js";
import { createRuntime, type GlobalArgs } from "../cli/runtime.js";
import { resolveSyncSettings, type SyncFlags } from "../cli/sync-settings.js";
import { PartialError, UsageError } from "../core/errors.js";

interface SyncArgs extends GlobalArgs, PassphraseArgs, SyncFlags {
  config?: string | undefined;
  "dry-run": boolean;
  "allow-rollback": boolean;
  "allow-expired": boolean;
  json: boolean;
  verbose: boolean;
}

function positiveInt(name: string, min: number, max: number) {
  return (value: number | undefined) => {
    if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) throw new UsageError(`--${name}: must be a whole number from ${min} to ${max}, got ${value}`);
    return value;
  };
}

export const syncCommand: CommandModule<GlobalArgs, SyncArgs> = {
  command: "sync",
  describe: "Bring a mirror folder up to date from upstream sources (failover in the order given)",
  builder: (yargs: Argv<GlobalArgs>) =>
    withPassphraseOptions(yargs)
      .option("source", { type: "string", array: true, describe: "Upstream (http(s)://, ftp(s)://, smb://, file:// or a folder); repeat for failover, first = preferred" })
      .option("dest", { type: "string", describe: "The mirror folder to update" })
      .option("config", { type: "string", describe: "Config file (sync, network and tags sections); flags override it" })
      .option("trust", { type: "string", array: true, describe: "Public key the upstream manifest must be signed with (repeatable)" })
      .option("sign-key", { type: "string", describe: "Secret key to sign our manifest with" })
      .option("dry-run", { type: "boolean", default: false, describe: "Print what would change and how many bytes, change nothing" })
      .option("include", { type: "string", array: true, describe: "Only paths matching these globs" })
      .option("exclude", { type: "string", array: true, describe: "Leave out paths matching these globs" })
      .option("select", { type: "string", array: true, describe: "Only files tagged TAG=VALUE[,VALUE] (product, component, platform, language, version)" })
      .option("allow-rollback", { type: "boolean", default: false, describe: "Accept a trusted manifest older than one accepted before" })
      .option("allow-expired", { type: "boolean", default: false, describe: "Accept an expired upstream manifest" })
      .option("max-delete", { type: "string", describe: "Refuse a plan deleting more files than this: a count or a percentage (default 50%)" })
      .option("keep-generations", { type: "number", coerce: positiveInt("keep-generations", 0, 100), describe: "Previous generations kept for rollback (default 3)" })
      .option("expires", { type: "string", describe: "Our manifest's lifetime, e.g. 7d" })
      .option("concurrency", { type: "number", coerce: positiveInt("concurrency", 1, 64), describe: "Files fetched at once (default 4)" })
      .option("retries", { type: "number", coerce: positiveInt("retries", 0, 20), describe: "Retries per file and source (default 3)" })
      .option("proxy", { type: "string", describe: "HTTP proxy URL, e.g. http://proxy:3128 (default: HTTP_PROXY/HTTPS_PROXY)" })
      .option("proxy-user", { type: "string", describe: "Proxy user name" })
      .option("proxy-password-env", { type: "string", describe: "Environment variable holding the proxy password" })
      .option("proxy-password-file", { type: "string", describe: "File holding the proxy password" })
      .option("ftp-password-env", { type: "string", describe: "Environment variable holding the password of the user in ftp(s)://USER@host/ sources" })
      .option("ftp-password-file", { type: "string", describe: "File holding the password of the user in ftp(s)://USER@host/ sources" })
      .option("smb-password-env", { type: "string", describe: "Environment variable holding the password of the user in smb://[DOMAIN;]USER@host/share/ sources" })
      .option("smb-password-file", { type: "string", describe: "File holding the password of the user in smb://[DOMAIN;]USER@host/share/ sources" })
      .option("ca-file", { type: "string", describe: "PEM file of extra CA certificates to trust" })
      .option("user-agent", { type: "string", describe: "User-Agent sent to upstreams" })
      .option("connect-timeout", { type: "string", describe: "Connect timeout per source, e.g. 10s (default)" })
      .option("bwlimit", { type: "string", describe: "Cap the run's transfer rate, bytes per second: 500k, 10M" })
      .option("json", { type: "boolean", default: false, describe: "NDJSON events on stdout" })
      .option("verbose", { alias: "v", type: "boolean", default: false, describe: "A line per file" })
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
    const limiter = settings.bandwidth === undefined ? undefined : createRateLimiter(settings.bandwidth);
    try {
      const summary = await runSync({
        sources: limiter ? opened.sources.map((s) => limitSource(s, limiter)) : opened.sources,
        store: openStore(settings.dest),
        selection: settings.selection,
        tagRules: config.tags,
        trust: { keys: settings.trustKeys, allowRollback: args["allow-rollback"], allowExpired: args["allow-expired"] },
        dryRun: args["dry-run"],
        concurrency: settings.concurrency,
        retry: { ...DEFAULT_RETRY, attempts: settings.retries + 1 },
        maxDelete: settings.maxDelete,
        keepGenerations: settings.keepGenerations,
        emit: createReporter({ json: args.json, verbose: args.verbose, logger: rt.logger }),
        ...(settings.signingKey && { sign: manifestSigner(settings.signingKey) }),
        ...(settings.expiresInMs !== undefined && { expiresInMs: settings.expiresInMs }),
      });
      if (summary.result === "partial") {
        throw new PartialError(`${summary.failed} file(s) could not be fetched from any source: they kept their previous version and nothing was removed; the next run tries them again`);
      }
    } finally {
      await opened.close();
    }
  },
};
