// Runs one tool for a benchmark: wall time, peak RSS, the tail of its output and the NDJSON events it printed.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { watchPeakRss } from "./peak-rss.js";

const repoRoot = fileURLToPath(new URL("../", import.meta.url));
/** The built CLI the benches run (as users do), not the TypeScript sources. */
export const binPath = path.join(repoRoot, "bin", "update-mirror.js");

/** True when the CLI is built; otherwise says how to build it and sets a failing exit code. */
export function cliIsBuilt(): boolean {
  if (existsSync(binPath) && existsSync(path.join(repoRoot, "dist", "cli", "main.js"))) return true;
  console.log("dist/cli/main.js missing: run `npm run build` first (npm run bench does)");
  process.exitCode = 1;
  return false;
}

const MB = 1e6;
const RUN_TIMEOUT_MS = 10 * 60_000;

// Proxies are for reaching the internet; loopback must not go through one (curl reads ftp_proxy too).
const PROXY_VARS = new Set(["http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "no_proxy"]);
/** Our environment without proxy variables, for every tool a bench runs against loopback. */
export const childEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !PROXY_VARS.has(k.toLowerCase())));

export interface ChildRun {
  /** Wall seconds from spawn to exit. */
  seconds: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  peakRssKiB: number | null;
  /** The last lines of output, for error messages. */
  tail: string;
  /** NDJSON event types seen on stdout, counted (update-mirror --json). */
  events: Record<string, number>;
  /** Seconds from spawn to the first event of each type, to split a run into its phases. */
  firstSeen: Record<string, number>;
  runDone?: { bytes?: number; elapsedMs?: number; result?: string; added?: number; updated?: number; removed?: number };
}

export interface ChildOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** GNU time, for peak RSS (else VmHWM is polled). */
  timeBin?: string | undefined;
  /** Sees every line of stdout. */
  onLine?: (line: string) => void;
  /** The process group while it runs, so the caller can kill it on Ctrl-C. */
  onSpawn?: (pid: number | undefined) => void;
}

/** Runs `cmd args` in its own process group; a run past ten minutes is killed (timedOut). */
export function runChild(cmd: string, args: readonly string[], options: ChildOptions): Promise<ChildRun> {
  const rssFile = path.join(tmpdir(), `update-mirror-bench-rss-${process.pid}.txt`);
  const file = options.timeBin ?? cmd;
  const argv = options.timeBin ? ["-f", "%M", "-o", rssFile, cmd, ...args] : [...args];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    // Its own process group, so a timeout (or Ctrl-C) stops the tool and not only GNU time.
    const child = spawn(file, argv, { cwd: options.cwd, env: options.env ?? childEnv, stdio: ["ignore", "pipe", "pipe"], detached: true });
    options.onSpawn?.(child.pid);
    const events: Record<string, number> = {};
    const firstSeen: Record<string, number> = {};
    let runDone: ChildRun["runDone"];
    let tail = "";
    let partial = "";
    const keepTail = (s: string) => {
      tail = (tail + s).slice(-4000);
    };
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      keepTail(s);
      const lines = (partial + s).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        options.onLine?.(line);
        const type = /^\{"type":"([^"]+)"/.exec(line)?.[1];
        if (type === undefined) continue;
        events[type] = (events[type] ?? 0) + 1;
        firstSeen[type] ??= (performance.now() - started) / 1000;
        if (type === "run:done") runDone = (JSON.parse(line) as { summary: ChildRun["runDone"] }).summary;
      }
    });
    child.stderr.setEncoding("utf8").on("data", keepTail);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    }, RUN_TIMEOUT_MS);
    const peakRss = watchPeakRss(child, options.timeBin ? rssFile : undefined);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const seconds = (performance.now() - started) / 1000;
      clearTimeout(timer);
      options.onSpawn?.(undefined);
      resolve({ seconds, code, signal, timedOut, peakRssKiB: peakRss(), tail, events, firstSeen, ...(runDone && { runDone }) });
    });
  });
}

export function fmtRss(kib: number | null): string {
  return kib === null ? "n/a" : `${((kib * 1024) / MB).toFixed(0)} MB`;
}
