// `status`: what a mirror or pulled endpoint holds and how old it is, with Nagios-convention exit codes for monitoring.
import type { Argv, CommandModule } from "yargs";
import { formatBytes } from "../cli/format.js";
import { createRuntime, type GlobalArgs } from "../cli/runtime.js";
import { parseDuration } from "../core/duration.js";
import { UpdateMirrorError, UsageError } from "../core/errors.js";
import type { Committed, MirrorState } from "../core/store.js";

interface StatusArgs extends GlobalArgs {
  dest: string;
  warn: string;
  crit: string;
  json: boolean;
}

/** Nagios plugin exit codes (monitoring-plugins guidelines). */
export const NAGIOS = { ok: 0, warning: 1, critical: 2, unknown: 3 } as const;
type Level = keyof typeof NAGIOS;

export interface StatusReport {
  dest: string;
  kind: "mirror" | "endpoint";
  status: Level;
  summary: string;
  /** Our manifest's version, and the upstream version it holds (when it came from a manifest upstream). */
  version: number | null;
  upstreamVersion: number | null;
  source: string | null;
  /** When the data was published upstream (or, without an upstream manifest, by this mirror). */
  created: string | null;
  ageSeconds: number | null;
  expires: string | null;
  files: number;
  bytes: number;
  lastRun: MirrorState["lastRun"] | null;
  lastSuccess: string | null;
  warnSeconds: number;
  critSeconds: number;
}

function humanAge(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${(seconds / 86_400).toFixed(1)}d`;
}

/** Builds the report from what the store holds; pure, so the thresholds are tested without a clock. */
export function statusReport(dest: string, kind: StatusReport["kind"], committed: Committed | undefined, state: MirrorState, now: Date, warnMs: number, critMs: number): StatusReport {
  const manifest = committed?.manifest;
  const upstream = manifest?.origin.upstreamVersion === undefined ? undefined : state.upstreams?.find((u) => u.version === manifest.origin.upstreamVersion);
  const created = upstream?.created ?? manifest?.created ?? null;
  const ageSeconds = created === null ? null : Math.max(0, (now.getTime() - Date.parse(created)) / 1000);
  const expires = upstream?.expires ?? manifest?.expires ?? null;
  let status: Level;
  let summary: string;
  if (!manifest || ageSeconds === null) {
    status = "unknown";
    summary = `${dest} holds no applied version yet${state.lastRun?.error ? `; last attempt failed: ${state.lastRun.error.message.split("\n")[0]}` : ""}`;
  } else {
    status = ageSeconds * 1000 >= critMs ? "critical" : ageSeconds * 1000 >= warnMs ? "warning" : "ok";
    const shown = manifest.origin.upstreamVersion ?? manifest.version;
    summary = `version ${shown} is ${humanAge(ageSeconds)} old`;
    if (expires !== null && Date.parse(expires) <= now.getTime()) {
      status = "critical";
      summary += `, expired at ${expires}`;
    }
    if (state.lastRun?.result === "failed") summary += `; last attempt ${state.lastRun.finished} failed: ${state.lastRun.error?.message.split("\n")[0] ?? "unknown error"}`;
  }
  return {
    dest,
    kind,
    status,
    summary,
    version: manifest?.version ?? null,
    upstreamVersion: manifest?.origin.upstreamVersion ?? null,
    source: upstream?.source ?? manifest?.origin.upstream ?? null,
    created,
    ageSeconds: ageSeconds === null ? null : Math.round(ageSeconds),
    expires,
    files: manifest?.files.length ?? 0,
    bytes: manifest?.files.reduce((sum, f) => sum + f.size, 0) ?? 0,
    lastRun: state.lastRun ?? null,
    lastSuccess: state.lastSuccess ?? null,
    warnSeconds: Math.round(warnMs / 1000),
    critSeconds: Math.round(critMs / 1000),
  };
}

/** The report as Nagios plugin output: a status line with performance data, then details. */
export function statusLines(r: StatusReport): string[] {
  const perf = r.ageSeconds === null ? "" : ` | age=${r.ageSeconds}s;${r.warnSeconds};${r.critSeconds};0`;
  const lines = [`UPDATE-MIRROR ${r.status.toUpperCase()} - ${r.summary}${perf}`];
  lines.push(`${r.kind} ${r.dest}`);
  if (r.version !== null) {
    const upstream = r.upstreamVersion === null ? "" : `, upstream version ${r.upstreamVersion}${r.source === null ? "" : ` from ${r.source}`}`;
    lines.push(`  version ${r.version}${upstream}`);
    lines.push(`  data created ${r.created}${r.expires === null ? "" : `, expires ${r.expires}`}`);
    lines.push(`  ${r.files} files, ${formatBytes(r.bytes)}`);
  }
  if (r.lastRun) lines.push(`  last attempt ${r.lastRun.finished}: ${r.lastRun.result}${r.lastRun.error ? ` (${r.lastRun.error.code}: ${r.lastRun.error.message.split("\n")[0]})` : ""}`);
  lines.push(`  last success ${r.lastSuccess ?? "never"}`);
  return lines;
}

export const statusCommand: CommandModule<GlobalArgs, StatusArgs> = {
  command: "status",
  describe: "Report what a mirror or pulled folder holds and how old it is (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .option("dest", { type: "string", demandOption: true, describe: "A mirror folder (sync) or an endpoint folder (pull --to)" })
      .option("warn", { type: "string", default: "3d", describe: "WARNING when the data is at least this old" })
      .option("crit", { type: "string", default: "7d", describe: "CRITICAL when the data is at least this old" })
      .option("json", { type: "boolean", default: false, describe: "The report as one JSON object" })
      .example("$0 status --dest /var/lib/av/bases --warn 3d --crit 7d", "a Nagios/Icinga check")
      .example("$0 status --dest /srv/mirror --json", "for scripts"),
  handler: async (args) => {
    const [{ createEndpointStore, isEndpoint }, { createFolderStore }] = await Promise.all([import("../stores/endpoint.js"), import("../stores/folder.js")]);
    const rt = createRuntime(args);
    const warnMs = parseDuration(args.warn, "--warn");
    const critMs = parseDuration(args.crit, "--crit");
    if (critMs < warnMs) throw new UsageError(`--crit (${args.crit}) must not be shorter than --warn (${args.warn})`);
    const kind = (await isEndpoint(args.dest)) ? "endpoint" : "mirror";
    const store = kind === "endpoint" ? createEndpointStore(args.dest) : createFolderStore(args.dest);
    let report: StatusReport;
    try {
      report = statusReport(store.label, kind, await store.readCommitted(), await store.readState(), new Date(), warnMs, critMs);
    } catch (err) {
      if (!(err instanceof UpdateMirrorError)) throw err;
      // Monitoring wants UNKNOWN with a reason, not a usage error, when the folder cannot be read.
      rt.print(args.json ? JSON.stringify({ dest: args.dest, status: "unknown", summary: err.message }) : `UPDATE-MIRROR UNKNOWN - ${err.message}`);
      process.exitCode = NAGIOS.unknown;
      return;
    }
    if (args.json) rt.print(JSON.stringify(report));
    else for (const line of statusLines(report)) rt.print(line);
    process.exitCode = NAGIOS[report.status];
  },
};
