// Serve benchmark: `update-mirror serve` (default and --workers 2) against nginx with dist-templates/nginx-update-mirror.conf, both serving the sync bench's tree, loaded with wrk over loopback.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, get } from "node:http";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Manifest } from "../src/core/manifest.js";
import { childStopper } from "../test/support/child.js";
import { findNginx, freePort, startNginx } from "../test/support/nginx.js";
import { aptInstall, findExecutable } from "./tools.js";

const repoRoot = fileURLToPath(new URL("../", import.meta.url));
const tree = path.join(repoRoot, ".bench", "sync", "upstream-v1");
const bin = path.join(repoRoot, "bin", "update-mirror.js");
const LARGE = "modules/module-192MiB.bin";
const SMALL_PATHS = 4000;
const DURATION = "10s";
const WARMUP = "3s";
const MB = 1e6;
const TARGET_LARGE = 0.8;
const TARGET_SMALL = 0.5;

// Proxies are for reaching the internet; loopback must not go through one.
const PROXY_VARS = new Set(["http_proxy", "https_proxy", "all_proxy", "no_proxy"]);
const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !PROXY_VARS.has(k.toLowerCase())));

function encodePath(p: string): string {
  return p.split("/").map(encodeURIComponent).join("/");
}

/** wrk's own totals, printed by the Lua `done` hook as one JSON line. */
interface WrkResult {
  ok: boolean;
  detail: string;
  seconds: number;
  requests: number;
  bytes: number;
  connect: number;
  read: number;
  write: number;
  timeout: number;
  /** Responses outside 2xx/3xx. */
  status: number;
  p50ms: number;
  p99ms: number;
  maxMs: number;
}

const DONE_HOOK = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"us":%d,"requests":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,"p50":%d,"p99":%d,"max":%d}\\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status, latency:percentile(50), latency:percentile(99), latency.max))
end
`;

/** A script that cycles every connection over `paths` (each thread from its own offset). */
function cyclingScript(paths: readonly string[]): string {
  return `local paths = {\n${paths.map((p) => `  "/${p}",`).join("\n")}\n}
local i = 0
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("start", counter * 7919)
end
init = function(args)
  i = (start or 0) % #paths
end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
${DONE_HOOK}`;
}

function runWrk(wrk: string, url: string, script: string, args: readonly string[]): WrkResult {
  const res = spawnSync(wrk, [...args, "-s", script, url], { encoding: "utf8", env: childEnv, timeout: 120_000 });
  const line = (res.stdout ?? "").split("\n").find((l) => l.startsWith("WRKJSON "));
  const empty = { seconds: 0, requests: 0, bytes: 0, connect: 0, read: 0, write: 0, timeout: 0, status: 0, p50ms: 0, p99ms: 0, maxMs: 0 };
  if (res.status !== 0 || line === undefined) {
    return { ok: false, detail: `wrk exited with ${res.status ?? res.signal}: ${(res.stderr || res.stdout || String(res.error)).trim().split("\n").slice(-3).join(" / ")}`, ...empty };
  }
  const j = JSON.parse(line.slice("WRKJSON ".length)) as Record<string, number>;
  const n = (k: string) => j[k] ?? 0;
  return { ok: true, detail: "", seconds: n("us") / 1e6, requests: n("requests"), bytes: n("bytes"), connect: n("connect"), read: n("read"), write: n("write"), timeout: n("timeout"), status: n("status"), p50ms: n("p50") / 1000, p99ms: n("p99") / 1000, maxMs: n("max") / 1000 };
}

function errorsOf(r: WrkResult): number {
  return hardErrorsOf(r) + r.timeout;
}

/** Errors that are not only slowness: refused or reset connections and non-2xx/3xx answers. */
function hardErrorsOf(r: WrkResult): number {
  return r.connect + r.read + r.write + r.status;
}

function errorText(r: WrkResult): string {
  return `socket errors: connect ${r.connect}, read ${r.read}, write ${r.write}, timeout ${r.timeout}; non-2xx/3xx ${r.status}`;
}

function ping(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.setTimeout(2_000, () => req.destroy());
  });
}

/**
 * Requests every path once, eight at a time, and fails on anything but 200. A long-running server
 * pays its first-request costs once per file (`serve` checks a file's bytes the first time it is
 * asked for one whose inode changed since its manifest), so both servers are measured after them.
 */
async function touchEvery(url: string, paths: readonly string[]): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const p = paths[next++] as string;
      const status = await new Promise<number>((resolve) => {
        const req = get(`${url}${p}`, { agent }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", () => resolve(0));
      });
      if (status !== 200) throw new Error(`warm-up: ${url}${p} answered ${status}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: 8 }, worker));
  } finally {
    agent.destroy();
  }
}

interface Target {
  label: string;
  url: string;
  stop(): Promise<void>;
}

async function startServe(label: string, extra: readonly string[], logDir: string): Promise<Target> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const log = path.join(logDir, `${label.replace(/\W+/g, "-")}.log`);
  const fd = openSync(log, "w");
  // The default access log (pino, one line per request) goes to a file, as nginx's does.
  const child = spawn(process.execPath, [bin, "serve", tree, "--port", String(port), ...extra], { env: childEnv, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const stop = childStopper(child, "SIGTERM", 15_000);
  const deadline = Date.now() + 120_000;
  while ((await ping(`${url}.update-mirror/healthz`)) !== 200) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`${label} did not start: ${readFileSync(log, "utf8").trim().split("\n").slice(-5).join(" / ")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { label, url, stop };
}

interface Scenario {
  name: string;
  script: string;
  args: readonly string[];
}

interface Measured {
  target: string;
  scenario: string;
  result: WrkResult;
}

function fmtRow(m: Measured): string {
  const r = m.result;
  if (!r.ok) return `${m.target.padEnd(32)} ${m.scenario.padEnd(38)} FAILED: ${r.detail}`;
  const rate = `${(r.requests / r.seconds).toFixed(0)} req/s`;
  const mbps = `${(r.bytes / MB / r.seconds).toFixed(0)} MB/s`;
  const errs = errorsOf(r) === 0 ? "no errors" : errorText(r);
  return `${m.target.padEnd(32)} ${m.scenario.padEnd(38)} ${rate.padStart(13)} ${mbps.padStart(10)}  p50 ${r.p50ms.toFixed(1)} ms, p99 ${r.p99ms.toFixed(1)} ms, max ${r.maxMs.toFixed(0)} ms; ${errs}`;
}

async function main(): Promise<void> {
  if (!existsSync(path.join(tree, ".update-mirror", "manifest.json"))) {
    console.log(`${path.relative(repoRoot, tree)} missing: create it with the sync bench first (npm run build && node --import tsx bench/sync.ts; npm run bench runs it before this one)`);
    process.exitCode = 1;
    return;
  }
  if (!existsSync(path.join(repoRoot, "dist", "cli", "main.js"))) {
    console.log("dist/ is missing: run `npm run build` first (npm run bench does)");
    process.exitCode = 1;
    return;
  }
  const missing = [findExecutable("wrk") ? undefined : "wrk", findNginx() ? undefined : "nginx-light"].filter((p): p is string => p !== undefined);
  const failure = aptInstall(missing);
  const wrk = findExecutable("wrk");
  const nginxBin = findNginx();
  if (!wrk) {
    console.log(`SKIPPED: serve benchmark (wrk unavailable: ${failure ?? "not found after installing"})`);
    return;
  }

  const manifest = JSON.parse(readFileSync(path.join(tree, ".update-mirror", "manifest.json"), "utf8")) as Manifest;
  const large = manifest.files.find((f) => f.path === LARGE);
  if (!large) throw new Error(`${LARGE} is not in the sync bench's manifest`);
  const small = manifest.files.filter((f) => f.size <= 64 * 1024);
  const step = Math.max(1, Math.floor(small.length / SMALL_PATHS));
  const picked = small.filter((_, i) => i % step === 0).slice(0, SMALL_PATHS);
  const pickedBytes = picked.reduce((sum, f) => sum + f.size, 0);

  const work = mkdtempSync(path.join(tmpdir(), "um-serve-bench-"));
  mkdirSync(path.join(work, "logs"));
  const largeScript = path.join(work, "large.lua");
  const smallScript = path.join(work, "small.lua");
  writeFileSync(largeScript, `local p = "/${encodePath(LARGE)}"\nrequest = function() return wrk.format("GET", p) end\n${DONE_HOOK}`);
  writeFileSync(smallScript, cyclingScript(picked.map((f) => encodePath(f.path))));
  // Page cache warm for both servers alike.
  for (const f of [large, ...picked]) readFileSync(path.join(tree, ...f.path.split("/")));

  const scenarios: Scenario[] = [
    { name: `large file (${(large.size / 2 ** 20).toFixed(0)} MiB), -t2 -c4`, script: largeScript, args: ["-t2", "-c4", `-d${DURATION}`] },
    { name: `small files (${picked.length}), -t2 -c64`, script: smallScript, args: ["-t2", "-c64", `-d${DURATION}`] },
    // wrk's default 2 s timeout: with wrk and the server on the same few cores, the slowest of 1,000
    // connections wait seconds for a turn (nginx's too, less so); 10 s keeps slowness apart from errors.
    { name: "1,000 keep-alive clients, -t2 -c1000", script: smallScript, args: ["-t2", "-c1000", `-d${DURATION}`, "--timeout", "10s"] },
  ];
  console.log(
    `serve benchmark — ${path.relative(repoRoot, tree)}: ${manifest.files.length} files; small set ${picked.length} files, ${(pickedBytes / MB).toFixed(0)} MB; ` +
      `wrk over loopback on this machine (${availableParallelism()} CPUs, shared by wrk and the server), ${DURATION} per run after every path was requested once and a ${WARMUP} wrk warm-up`,
  );
  console.log("access logs on for both (serve: its default pino log to a file; nginx: access_log to a file); nginx worker_processes auto, worker_connections 4096");

  const rows: Measured[] = [];
  const starters: { label: string; start: () => Promise<Target> }[] = [];
  if (nginxBin) {
    starters.push({
      label: "nginx (shipped template)",
      start: async () => {
        const n = await startNginx(nginxBin, tree, { workerProcesses: "auto", workerConnections: 4096, accessLog: true });
        return { label: "nginx (shipped template)", url: n.url, stop: n.stop };
      },
    });
  } else console.log(`SKIPPED: nginx comparison (nginx unavailable: ${failure ?? "not found after installing"})`);
  starters.push({ label: "update-mirror serve", start: () => startServe("update-mirror serve", [], path.join(work, "logs")) });
  starters.push({ label: "update-mirror serve --workers 2", start: () => startServe("update-mirror serve --workers 2", ["--workers", "2"], path.join(work, "logs")) });

  let serveFailed = false;
  for (const s of starters) {
    let target: Target;
    try {
      target = await s.start();
    } catch (err) {
      console.log(`FAILED to start ${s.label}: ${(err as Error).message}`);
      if (s.label.startsWith("update-mirror")) serveFailed = true;
      continue;
    }
    try {
      await touchEvery(target.url, [encodePath(LARGE), ...picked.map((f) => encodePath(f.path))]);
      for (const sc of scenarios) {
        runWrk(wrk, target.url, sc.script, [...sc.args.filter((a) => !a.startsWith("-d")), `-d${WARMUP}`]);
        const m: Measured = { target: s.label, scenario: sc.name, result: runWrk(wrk, target.url, sc.script, sc.args) };
        rows.push(m);
        console.log(fmtRow(m));
      }
    } finally {
      await target.stop();
    }
  }

  console.log("");
  const find = (target: string, scenario: Scenario) => rows.find((r) => r.target === target && r.scenario === scenario.name)?.result;
  const [largeSc, smallSc, manySc] = scenarios as [Scenario, Scenario, Scenario];
  const nginxLarge = find("nginx (shipped template)", largeSc);
  const nginxSmall = find("nginx (shipped template)", smallSc);
  for (const label of ["update-mirror serve", "update-mirror serve --workers 2"]) {
    const ours = { large: find(label, largeSc), small: find(label, smallSc), many: find(label, manySc) };
    if (ours.large?.ok && nginxLarge?.ok) {
      const ratio = ours.large.bytes / ours.large.seconds / (nginxLarge.bytes / nginxLarge.seconds);
      console.log(`${ratio >= TARGET_LARGE ? "PASS" : "BELOW TARGET"}: ${label} large-file throughput ${ratio.toFixed(2)}x nginx's; target >= ${TARGET_LARGE}x`);
    } else console.log(`SKIPPED: ${label} large-file ratio (no nginx or no run)`);
    if (ours.small?.ok && nginxSmall?.ok) {
      const ratio = ours.small.requests / ours.small.seconds / (nginxSmall.requests / nginxSmall.seconds);
      console.log(`${ratio >= TARGET_SMALL ? "PASS" : "BELOW TARGET"}: ${label} small-file rate ${ratio.toFixed(2)}x nginx's; target >= ${TARGET_SMALL}x`);
    } else console.log(`SKIPPED: ${label} small-file ratio (no nginx or no run)`);
    for (const [name, r] of [
      ["large-file", ours.large],
      ["small-file", ours.small],
      ["1,000-client", ours.many],
    ] as const) {
      if (r === undefined) continue;
      // Refused, reset or non-2xx answers are errors; a timeout is slowness, reported but never failing.
      const broken = !r.ok || hardErrorsOf(r) > 0;
      if (broken) serveFailed = true;
      if (name !== "1,000-client" && !broken && r.timeout === 0) continue;
      const verdictText = broken ? "FAIL" : r.timeout > 0 ? "BELOW TARGET" : "PASS";
      console.log(`${verdictText}: ${label} ${name} run with ${r.ok ? errorText(r) : r.detail}; target zero errors`);
    }
  }
  const nginxMany = find("nginx (shipped template)", manySc);
  if (nginxMany) console.log(`(nginx, 1,000 clients: ${nginxMany.ok ? errorText(nginxMany) : nginxMany.detail})`);

  rmSync(work, { recursive: true, force: true });
  console.log("\none run each, so expect noise of ±10-20% on a shared machine; this never fails for being slow (wrk timeouts included), only for connection errors or non-2xx answers from update-mirror serve");
  if (serveFailed) process.exitCode = 1;
}

await main();
