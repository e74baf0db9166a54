// `status`: what a mirror or pulled endpoint holds and how old it is, with Nagios-convention exit codes for monitoring.
import type { Argv, CommandModule } from "yargs";
import { formatBytes } from "../cli/format.js";
import { createRuntime, type GlobalArgs } from "../cli/runtime.js";
import { parseDuration } from "../core/duration.js";
import { UpdateMirrorError, UsageError } from "../core/errors.js";
import { CONFIG_FLAG_HELP } from "../config/paths.js";
import type { Config } from "../config/schema.js";
import type { Committed, MirrorState } from "../core/store.js";
import { type OpenedTarget, openTarget } from "./target-store.js";

interface StatusArgs extends GlobalArgs {
  dest?: string | undefined;
  job?: string | undefined;
  config?: string | undefined;
  warn?: string | undefined;
  crit?: string | undefined;
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
  /** Per product tag, the newest `version` tag among its files. */
  products: Record<string, string>;
  /** The config's job this report is for. */
  job?: string;
}

/** The newest version tag of each product in the manifest (versions compared numerically where they are numbers). */
function newestByProduct(committed: Committed | undefined): Record<string, string> {
  const newest: Record<string, string> = {};
  for (const f of committed?.manifest.files ?? []) {
    const product = f.tags?.product;
    const version = f.tags?.version;
    if (product === undefined || version === undefined) continue;
    const seen = newest[product];
    if (seen === undefined || version.localeCompare(seen, "en", { numeric: true }) > 0) newest[product] = version;
  }
  return newest;
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
    products: newestByProduct(committed),
  };
}

/** The report as Nagios plugin output: a status line with performance data, then details. */
export function statusLines(r: StatusReport): string[] {
  const perf = r.ageSeconds === null ? "" : ` | age=${r.ageSeconds}s;${r.warnSeconds};${r.critSeconds};0`;
  const lines = [`UPDATE-MIRROR ${r.status.toUpperCase()} - ${r.summary}${perf}`];
  lines.push(`${r.job === undefined ? "" : `job ${r.job}: `}${r.kind} ${r.dest}`);
  if (r.version !== null) {
    const upstream = r.upstreamVersion === null ? "" : `, upstream version ${r.upstreamVersion}${r.source === null ? "" : ` from ${r.source}`}`;
    lines.push(`  version ${r.version}${upstream}`);
    lines.push(`  data created ${r.created}${r.expires === null ? "" : `, expires ${r.expires}`}`);
    lines.push(`  ${r.files} files, ${formatBytes(r.bytes)}`);
    const products = Object.entries(r.products).map(([p, v]) => `${p} ${v}`);
    if (products.length > 0) lines.push(`  newest: ${products.join(", ")}`);
  }
  if (r.lastRun) lines.push(`  last attempt ${r.lastRun.finished}: ${r.lastRun.result}${r.lastRun.error ? ` (${r.lastRun.error.code}: ${r.lastRun.error.message.split("\n")[0]})` : ""}`);
  lines.push(`  last success ${r.lastSuccess ?? "never"}`);
  return lines;
}

/** Several reports (one per job) as one check: the worst status, and how many are at each. */
export function combinedStatus(reports: readonly StatusReport[]): { status: Level; summary: string } {
  const order: Level[] = ["ok", "warning", "unknown", "critical"];
  const worst = reports.reduce<Level>((w, r) => (order.indexOf(r.status) > order.indexOf(w) ? r.status : w), "ok");
  const counts = order.map((level) => [level, reports.filter((r) => r.status === level).length] as const).filter(([, n]) => n > 0);
  const problems = reports.filter((r) => r.status !== "ok").map((r) => `${r.job ?? r.dest}: ${r.summary}`);
  const summary = `${reports.length} job${reports.length === 1 ? "" : "s"}: ${counts.map(([level, n]) => `${n} ${level.toUpperCase()}`).join(", ")}${problems.length > 0 ? ` (${problems.join("; ")})` : ""}`;
  return { status: worst, summary };
}

export const statusCommand: CommandModule<GlobalArgs, StatusArgs> = {
  command: "status",
  describe: "Report what a mirror or pulled folder holds and how old it is (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .option("dest", { type: "string", describe: "A mirror (folder or smb://) or an endpoint folder (pull --to); without it, every job of the config" })
      .option("job", { type: "string", describe: "Only this job of the config file" })
      .option("config", { type: "string", describe: CONFIG_FLAG_HELP })
      .option("warn", { type: "string", describe: "WARNING when the data is at least this old (default 3d, or the job's `warn`)" })
      .option("crit", { type: "string", describe: "CRITICAL when the data is at least this old (default 7d, or the job's `crit`)" })
      .option("json", { type: "boolean", default: false, describe: "The report as one JSON object" })
      .example("$0 status --dest /var/lib/av/bases --warn 3d --crit 7d", "a Nagios/Icinga check")
      .example("$0 status --json", "every job of the config, for scripts")
      .example("$0 status --job nightly-sync", "one job"),
  handler: async (args) => {
    try {
      await statusOnce(args);
    } catch (err) {
      if (!(err instanceof UpdateMirrorError)) throw err;
      // A monitoring check that cannot tell (bad flag, unreadable config) says UNKNOWN, never CRITICAL.
      process.stdout.write(`${args.json ? JSON.stringify({ status: "unknown", summary: err.message }) : `UPDATE-MIRROR UNKNOWN - ${err.message.split("\n")[0]}`}\n`);
      process.exitCode = NAGIOS.unknown;
    }
  },
};

/** The check as the flags ask: one destination, one job, or every job. Throws UsageError/ConfigError. */
async function statusOnce(args: StatusArgs): Promise<void> {
  const [{ defaultConfig, loadConfigOrDefault }, { jobNamed, jobTarget }] = await Promise.all([import("../config/load.js"), import("../jobs/argv.js")]);
  const rt = createRuntime(args);
  if (args.dest !== undefined && args.job !== undefined) throw new UsageError("give --dest or --job, not both");
  const thresholds = (warn: string | undefined, crit: string | undefined) => {
    const warnText = args.warn ?? warn ?? "3d";
    const critText = args.crit ?? crit ?? "7d";
    const warnMs = parseDuration(warnText, "--warn");
    const critMs = parseDuration(critText, "--crit");
    if (critMs < warnMs) throw new UsageError(`--crit (${critText}) must not be shorter than --warn (${warnText})`);
    return { warnMs, critMs };
  };
  // A local --dest needs no config (monitoring users often cannot read it); a share needs its password reference.
  const needsConfig = args.config !== undefined || args.dest === undefined || /^smb:\/\//i.test(args.dest);
  const { config, file } = needsConfig ? await loadConfigOrDefault(args.config, args.dest === undefined) : { config: defaultConfig(), file: undefined };
  const targets: { path: string; kind?: "mirror" | "endpoint"; job?: string; warn?: string | undefined; crit?: string | undefined }[] = [];
  if (args.dest !== undefined) targets.push({ path: args.dest });
  else {
    const names = args.job === undefined ? Object.keys(config.jobs) : [args.job];
    if (names.length === 0) throw new UsageError("the config has no jobs; give --dest PATH");
    for (const name of names) {
      const job = jobNamed(config, name, file);
      targets.push({ ...jobTarget(job), job: name, warn: job.warn, crit: job.crit });
    }
  }
  const reports: StatusReport[] = [];
  for (const target of targets) {
    const { warnMs, critMs } = thresholds(target.warn, target.crit);
    reports.push(await reportFor(target, config, warnMs, critMs));
  }
  if (args.dest !== undefined || args.job !== undefined) {
    const report = reports[0] as StatusReport;
    if (args.json) rt.print(JSON.stringify(report));
    else for (const line of statusLines(report)) rt.print(line);
    process.exitCode = NAGIOS[report.status];
    return;
  }
  const { status, summary } = combinedStatus(reports);
  if (args.json) rt.print(JSON.stringify({ status, summary, jobs: reports }));
  else {
    rt.print(`UPDATE-MIRROR ${status.toUpperCase()} - ${summary}`);
    for (const report of reports) for (const line of statusLines(report).slice(1)) rt.print(line);
  }
  process.exitCode = NAGIOS[status];
}

/** One target's report; a target that cannot be read is UNKNOWN with the reason (monitoring wants that, not a usage error). */
async function reportFor(
  target: { path: string; kind?: "mirror" | "endpoint"; job?: string },
  config: Config,
  warnMs: number,
  critMs: number,
): Promise<StatusReport> {
  let opened: OpenedTarget | undefined;
  try {
    opened = await openTarget(target.path, config, target.kind);
    let state = await opened.store.readState();
    if (target.job !== undefined) {
      // A job's own attempts, from the history: an export job reads a mirror that sync jobs write too.
      const runs = (await opened.store.readHistory()).filter((r) => r.job === target.job);
      const lastRun = runs.at(-1);
      const lastSuccess = runs.filter((r) => r.result === "updated" || r.result === "unchanged").at(-1)?.finished;
      const { lastRun: _mirrorsRun, lastSuccess: _mirrorsSuccess, ...rest } = state;
      state = { ...rest, ...(lastRun && { lastRun }), ...(lastSuccess !== undefined && { lastSuccess }) };
    }
    const report = statusReport(opened.store.label, opened.kind, await opened.store.readCommitted(), state, new Date(), warnMs, critMs);
    return { ...report, ...(target.job !== undefined && { job: target.job }) };
  } catch (err) {
    if (!(err instanceof UpdateMirrorError)) throw err;
    return {
      dest: opened?.store.label ?? target.path,
      kind: opened?.kind ?? target.kind ?? "mirror",
      status: "unknown",
      summary: err.message.split("\n")[0] as string,
      version: null,
      upstreamVersion: null,
      source: null,
      created: null,
      ageSeconds: null,
      expires: null,
      files: 0,
      bytes: 0,
      lastRun: null,
      lastSuccess: null,
      warnSeconds: Math.round(warnMs / 1000),
      critSeconds: Math.round(critMs / 1000),
      products: {},
      ...(target.job !== undefined && { job: target.job }),
    };
  } finally {
    await opened?.store.close?.();
  }
}
