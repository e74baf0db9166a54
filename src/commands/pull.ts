// `pull`: the endpoint side — update a local folder from mirrors (HTTP, shares, media) as whole verified sets, with failover, rollback and hooks.
import type { Argv, CommandModule } from "yargs";
import { describeHookEnd, runHook, summaryEnv } from "../cli/hook.js";
import { exitCodeFor } from "../cli/exit-codes.js";
import { createRuntime, type GlobalArgs, type Runtime, stopSignal } from "../cli/runtime.js";
import { withTransferOptions } from "../cli/transfer-options.js";
import { rateLimiterFor, resolveSyncSettings, type SyncFlags } from "../cli/sync-settings.js";
import { parseDuration } from "../core/duration.js";
import { HookError, UpdateMirrorError, UsageError } from "../core/errors.js";
import type { RunSummary } from "../engine/events.js";
import { DEFAULT_RETRY } from "../wrap/retry.js";

interface PullArgs extends GlobalArgs, Omit<SyncFlags, "dest" | "sign-key" | "keep-generations" | "expires"> {
  to?: string | undefined;
  config?: string | undefined;
  keep: number;
  rollback: boolean;
  "on-update"?: string | undefined;
  "on-error"?: string | undefined;
  "hook-timeout": string;
  "allow-rollback": boolean;
  "allow-expired": boolean;
  "dry-run": boolean;
  json: boolean;
  verbose: boolean;
}

/** What a hook learns about the run, as environment variables (README "pull"). */
function hookEnv(event: "update" | "rollback" | "error", target: string, summary?: RunSummary, error?: UpdateMirrorError): Record<string, string> {
  return {
    UPDATE_MIRROR_EVENT: event,
    UPDATE_MIRROR_TARGET: target,
    ...summaryEnv(summary),
    ...(error && { UPDATE_MIRROR_ERROR: error.message.split("\n")[0] as string, UPDATE_MIRROR_EXIT_CODE: String(exitCodeFor(error.code)) }),
  };
}

/** Runs a hook, logs and prints how it ended; returns a HookError when it failed. */
async function hook(rt: Runtime, args: PullArgs, flag: "on-update" | "on-error", env: Record<string, string>): Promise<HookError | undefined> {
  const command = args[flag];
  if (command === undefined) return undefined;
  const result = await runHook(command, env, parseDuration(args["hook-timeout"], "--hook-timeout"));
  const ok = result.exitCode === 0 && !result.timedOut;
  rt.logger[ok ? "info" : "error"]({ event: "hook:done", hook: flag, exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut, output: result.output }, "hook:done");
  if (!args.json) {
    for (const line of result.output.split("\n").filter((l) => l !== "")) process.stderr.write(`${flag}: ${line}\n`);
  }
  if (ok) return undefined;
  return new HookError(`--${flag} hook ${describeHookEnd(result)}`);
}

export const pullCommand: CommandModule<GlobalArgs, PullArgs> = {
  command: "pull",
  describe: "Update an endpoint folder from mirrors as a whole verified set (failover in the order given), or roll it back",
  builder: (yargs: Argv<GlobalArgs>) =>
    withTransferOptions(yargs)
      .option("source", { type: "string", array: true, describe: "A mirror: http(s)://, ftp(s)://, smb://, a folder (share, medium) or an exported archive; repeat for failover, first = preferred" })
      .option("to", { type: "string", describe: "The endpoint folder to update (a link to the current set, managed by pull)" })
      .option("config", { type: "string", describe: "Config file (network section; sync.sources/select/trust as defaults)" })
      .option("trust", { type: "string", array: true, describe: "Public key the mirror's manifest must be signed with (repeatable)" })
      .option("keep", { type: "number", default: 1, describe: "Previous sets kept for --rollback" })
      .option("rollback", { type: "boolean", default: false, describe: "Switch back to the previous set and change nothing else" })
      .option("on-update", { type: "string", describe: "Shell command run after the folder changed (env: UPDATE_MIRROR_OLD_VERSION, _NEW_VERSION, ...)" })
      .option("on-error", { type: "string", describe: "Shell command run after a failed pull (env: UPDATE_MIRROR_ERROR, _EXIT_CODE, ...)" })
      .option("hook-timeout", { type: "string", default: "5m", describe: "Longest a hook may run" })
      .check((a) => {
        if (!Number.isInteger(a.keep) || a.keep < 0 || a.keep > 20) throw new UsageError(`--keep: must be a whole number from 0 to 20, got ${a.keep}`);
        return true;
      })
      .example("$0 pull --source http://mirror1:8080/ --source /media/usb --to /var/lib/av/bases --trust dmz.pub --select product=kes", "failover from HTTP to a medium")
      .example("$0 pull --to /var/lib/av/bases --rollback", "back to the previous set")
      .example('$0 pull --source http://mirror:8080/ --to /opt/av/bases --on-update "systemctl reload av"', "reload the product after a change"),
  handler: async (args) => {
    // Loaded on use, so `--help` and other commands do not pay for this command's dependencies.
    const [{ defaultConfig, loadConfigFile }, { runSync }, { runRollback }, { openPullSources }, { createEndpointStore }, { createReporter }, { limitSource }] = await Promise.all([
      import("../config/load.js"),
      import("../engine/sync.js"),
      import("../engine/rollback.js"),
      import("../sources/registry.js"),
      import("../stores/endpoint.js"),
      import("../cli/reporters/reporter.js"),
      import("../wrap/bandwidth.js"),
    ]);
    const rt = createRuntime(args);
    const emit = createReporter({ json: args.json, verbose: args.verbose, logger: rt.logger });
    if (args.to === undefined) throw new UsageError("give --to, the endpoint folder to update");
    const store = createEndpointStore(args.to);
    if (args.rollback) {
      const summary = await runRollback({ store, keepGenerations: args.keep, emit });
      const failed = await hook(rt, args, "on-update", hookEnv("rollback", store.label, summary));
      if (failed) throw failed;
      return;
    }
    const config = args.config === undefined ? defaultConfig() : await loadConfigFile(args.config);
    const settings = await resolveSyncSettings({ ...args, dest: args.to, "keep-generations": args.keep }, config);
    // An endpoint has other mirrors to try: a source that connects but does not answer gets no longer than one that does not connect.
    const http = { ...settings.http, headersTimeoutMs: settings.http.connectTimeoutMs };
    const opened = await openPullSources(settings.sources, http, { ...(settings.ftp && { ftp: settings.ftp }), ...(settings.smb && { smb: settings.smb }) });
    const limiter = rateLimiterFor(settings);
    let summary: RunSummary;
    try {
      summary = await runSync({
        sources: limiter ? opened.sources.map((s) => limitSource(s, limiter)) : opened.sources,
        store,
        selection: settings.selection,
        tagRules: [],
        trust: { keys: settings.trustKeys, allowRollback: args["allow-rollback"], allowExpired: args["allow-expired"] },
        requireManifest: true,
        dryRun: args["dry-run"],
        concurrency: settings.concurrency,
        retry: { ...DEFAULT_RETRY, attempts: settings.retries + 1 },
        maxDelete: settings.maxDelete,
        keepGenerations: settings.keepGenerations,
        emit,
        record: { command: "pull", job: args["as-job"] },
        signal: stopSignal(),
      });
    } catch (err) {
      if (err instanceof UpdateMirrorError && !args["dry-run"]) {
        const failed = await hook(rt, args, "on-error", hookEnv("error", store.label, undefined, err));
        if (failed) process.stderr.write(`update-mirror: ${failed.message}\n`);
      }
      throw err;
    } finally {
      await opened.close();
    }
    if (summary.result !== "updated") return;
    const failed = await hook(rt, args, "on-update", hookEnv("update", store.label, summary));
    if (failed) throw new HookError(`${failed.message}; version ${summary.upstreamVersion ?? summary.version} was applied to ${store.label}`);
  },
};
