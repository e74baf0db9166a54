// Sync benchmark: `update-mirror sync` over loopback HTTP (full, no-op, delta) against rclone and aria2c on the same server.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, copyFileSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Manifest, ManifestFile } from "../src/core/manifest.js";
import { walkTree } from "../src/fs/walk.js";
import { indexTree } from "../src/mirror/index-tree.js";
import { METADATA_DIR } from "../src/mirror/layout.js";
import { readMirrorManifest } from "../src/mirror/metadata.js";
import { type ServerCounts, startStaticServer } from "./static-server.js";
import { prng } from "./random.js";
import { contentMaker, writeBenchTree } from "./tree.js";
import { aptInstall, findExecutable } from "./tools.js";
import { binPath, type ChildRun, cliIsBuilt, fmtRss, runChild } from "./child-run.js";

const repoRoot = fileURLToPath(new URL("../", import.meta.url));
const syncDir = path.join(repoRoot, ".bench", "sync");
const v1Dir = path.join(syncDir, "upstream-v1");
const v2Dir = path.join(syncDir, "upstream-v2");
const markerFile = path.join(syncDir, "upstream.params.json");
const runsDir = path.join(syncDir, "runs");
const aria2List = path.join(syncDir, "aria2-input.txt");
const MiB = 1024 * 1024;
const MB = 1e6;
const RSS_TARGET_BYTES = 200 * MB;
const TOOL_CONCURRENCY = 8;
// Rounds of the compared full syncs (BENCH_ROUNDS=1 for a quick look).
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3) || 3);
// A hung tool must not hang the bench; a full sync here takes well under a minute.

// Changing any of these (or the generator) regenerates both upstreams; bump `generator` when the code changes.
const PARAMS = {
  generator: 1,
  seed: 0x5eed_51c0,
  smallFiles: 40_000,
  filesPerFolder: 200,
  topFolders: 10,
  minSize: 200,
  maxSize: 24 * 1024,
  largeMiB: [32, 96, 192],
  v2: { seed: 0x5eed_0002, changedPct: 5, removedPct: 1, addedPct: 1 },
};

const skipMetadata = (rel: string, isDir: boolean): boolean => isDir && rel === METADATA_DIR;

function writeV1(): void {
  writeBenchTree(v1Dir, PARAMS, { folder: "modules", name: (mib) => `module-${mib}MiB.bin` }, prng(PARAMS.seed));
}

/**
 * v2 = v1 with some small files changed, removed and added. Unchanged files are hard links, so v2
 * costs only its changes in time and disk, and keeps v1's mtimes (and so the server's ETags).
 */
async function writeV2(): Promise<void> {
  const { files } = await walkTree(v1Dir, { skip: skipMetadata });
  const small = files.filter((f) => !f.path.startsWith("modules/"));
  const next = prng(PARAMS.v2.seed);
  const { slice, smallSize } = contentMaker(next, PARAMS);
  // A seeded shuffle picks exactly the intended numbers of files.
  const order = small.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const removedCount = Math.round((small.length * PARAMS.v2.removedPct) / 100);
  const changedCount = Math.round((small.length * PARAMS.v2.changedPct) / 100);
  const addedCount = Math.round((small.length * PARAMS.v2.addedPct) / 100);
  const removed = new Set(order.slice(0, removedCount).map((i) => small[i]?.path));
  const changed = new Set(order.slice(removedCount, removedCount + changedCount).map((i) => small[i]?.path));
  const made = new Set<string>();
  const ensureDir = (dir: string) => {
    if (made.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    made.add(dir);
  };
  for (const f of files) {
    if (removed.has(f.path)) continue;
    const to = path.join(v2Dir, ...f.path.split("/"));
    ensureDir(path.dirname(to));
    if (changed.has(f.path)) writeFileSync(to, slice(smallSize()));
    else linkSync(f.absPath, to);
  }
  for (let i = 0; i < addedCount; i++) {
    const beside = small[next() % small.length];
    if (!beside) continue;
    const dir = path.join(v2Dir, ...path.posix.dirname(beside.path).split("/"));
    ensureDir(dir);
    writeFileSync(path.join(dir, `added-${String(i).padStart(5, "0")}.bin`), slice(smallSize()));
  }
  // v1's manifest (a copy: indexTree replaces it) makes v2's manifest the next version, as a vendor's would be.
  mkdirSync(path.join(v2Dir, METADATA_DIR), { recursive: true });
  copyFileSync(path.join(v1Dir, METADATA_DIR, "manifest.json"), path.join(v2Dir, METADATA_DIR, "manifest.json"));
}

async function ensureUpstreams(): Promise<{ reused: boolean; seconds: number }> {
  const wanted = JSON.stringify(PARAMS);
  if (existsSync(markerFile) && existsSync(v1Dir) && existsSync(v2Dir) && readFileSync(markerFile, "utf8") === wanted) return { reused: true, seconds: 0 };
  const started = performance.now();
  rmSync(markerFile, { force: true });
  rmSync(v1Dir, { recursive: true, force: true });
  rmSync(v2Dir, { recursive: true, force: true });
  mkdirSync(v1Dir, { recursive: true });
  writeV1();
  // The real `index`, so the upstream publishes exactly what a vendor running update-mirror would.
  await indexTree(v1Dir);
  await writeV2();
  await indexTree(v2Dir);
  // Written last, so an interrupted generation is redone rather than reused.
  writeFileSync(markerFile, wanted);
  return { reused: false, seconds: (performance.now() - started) / 1000 };
}

async function loadManifest(dir: string): Promise<Manifest> {
  const loaded = await readMirrorManifest(dir);
  if (!loaded) throw new Error(`${dir}: no manifest; remove ${markerFile} to regenerate the upstreams`);
  return loaded.manifest;
}

function warmPageCache(files: readonly string[]): void {
  const buf = Buffer.allocUnsafe(4 * MiB);
  for (const f of files) {
    const fd = openSync(f, "r");
    try {
      while (readSync(fd, buf, 0, buf.length, null) > 0) {
        // reading is the point
      }
    } finally {
      closeSync(fd);
    }
  }
}

interface Tools {
  rclone?: string;
  aria2c?: string;
  time?: string;
  notes: string[];
}

function ensureTools(): Tools {
  const wanted = [
    { name: "time", pkg: "time", bin: "/usr/bin/time" },
    { name: "rclone", pkg: "rclone", bin: findExecutable("rclone") },
    { name: "aria2c", pkg: "aria2", bin: findExecutable("aria2c") },
  ];
  const missing = wanted.filter((w) => w.bin === undefined || !existsSync(w.bin));
  const failure = aptInstall(missing.map((m) => m.pkg));
  const tools: Tools = { notes: [] };
  if (existsSync("/usr/bin/time")) tools.time = "/usr/bin/time";
  else tools.notes.push(`/usr/bin/time unavailable (${failure ?? "not installed"}): peak RSS comes from polling /proc/PID/status VmHWM`);
  const rclone = findExecutable("rclone");
  if (rclone) tools.rclone = rclone;
  else tools.notes.push(`rclone comparison skipped: ${failure ?? "rclone not found after installing"}`);
  const aria2c = findExecutable("aria2c");
  if (aria2c) tools.aria2c = aria2c;
  else tools.notes.push(`aria2c comparison skipped: ${failure ?? "aria2c not found after installing"}`);
  return tools;
}

/**
 * Compares a destination with a manifest: same paths and sizes, and the SHA-256 of every 97th file.
 * Returns the problems found (empty when it matches).
 */
async function checkTree(dest: string, manifest: Manifest): Promise<string[]> {
  if (!existsSync(dest)) return [`${dest} does not exist`];
  const { files, refused } = await walkTree(dest, { skip: skipMetadata });
  const problems = refused.map((r) => `refused: ${r}`);
  const want = new Map(manifest.files.map((f) => [f.path, f]));
  let sampled = 0;
  for (const f of files) {
    const w = want.get(f.path);
    if (!w) {
      problems.push(`unexpected file ${f.path}`);
      continue;
    }
    want.delete(f.path);
    if (w.size !== f.size) problems.push(`${f.path}: ${f.size} bytes, expected ${w.size}`);
    else if (sampled++ % 97 === 0 && createHash("sha256").update(readFileSync(f.absPath)).digest("hex") !== w.sha256) problems.push(`${f.path}: wrong content`);
  }
  for (const p of want.keys()) problems.push(`missing ${p}`);
  return problems;
}

function encodePath(p: string): string {
  return p.split("/").map(encodeURIComponent).join("/");
}

/** aria2c's input file: every payload URL, with dir=/out= so the folder tree is recreated under `dest`. */
function writeAria2List(files: readonly ManifestFile[], base: string, dest: string): void {
  const lines: string[] = [];
  for (const f of files) {
    const dir = path.posix.dirname(f.path);
    lines.push(`${base}${encodePath(f.path)}`, `  dir=${dir === "." ? dest : path.join(dest, ...dir.split("/"))}`, `  out=${path.posix.basename(f.path)}`);
  }
  writeFileSync(aria2List, `${lines.join("\n")}\n`);
}

interface Row {
  label: string;
  kind: "full" | "no-op" | "delta";
  tool: "update-mirror" | "rclone" | "aria2c";
  run: ChildRun;
  counts: ServerCounts;
  problems: string[];
  /** Requests the run should take, when there is a rule for it. */
  expectedRequests?: number;
  note?: string;
}

/** A tool in the full-sync comparison, with its runs. */
interface Compared {
  label: string;
  tool: Row["tool"];
  rows: Row[];
}

interface Contender extends Compared {
  key: string;
  cmd: string;
  args(dest: string): string[];
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Removes a tree and waits until the file system has forgotten the deletion. ext4 will not reuse an
 * inode freed within the last dirty_expire_centisecs + 5 s, and checks every candidate it skips, so
 * creating 40,000 files right after deleting 40,000 runs several times slower (perf: a quarter of a
 * full sync in ext4's recently_deleted()). Without the wait, whichever tool ran first after a delete
 * paid for it.
 */
async function removeAndSettle(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  rmSync(dir, { recursive: true, force: true });
  flushWrites();
  let expireSeconds = 30;
  try {
    expireSeconds = Number(readFileSync("/proc/sys/vm/dirty_expire_centisecs", "utf8").trim()) / 100 || expireSeconds;
  } catch {
    // Not Linux: the default is as good a guess as any.
  }
  const wait = expireSeconds + 6;
  console.log(`(removed ${path.relative(repoRoot, dir)}; waiting ${wait} s so the next run does not pay for the deletion)`);
  await new Promise((resolve) => setTimeout(resolve, wait * 1000));
}

function flushWrites(): void {
  // Dirty pages left by one tool must not be written back on the next tool's time.
  spawnSync("sync");
}


function printTable(rows: readonly Row[]): void {
  const header = ["run", "wall s", "requests", "GET/HEAD", "listings", "conns", "MB moved", "MB/s", "peak RSS", "result"];
  const body = rows.map((r) => {
    const ok = r.run.code === 0 && r.problems.length === 0;
    const requests = r.expectedRequests === undefined ? String(r.counts.requests) : `${r.counts.requests} (want ${r.expectedRequests})`;
    return [
      r.label,
      r.run.seconds.toFixed(2),
      requests,
      `${r.counts.byMethod.GET ?? 0}/${r.counts.byMethod.HEAD ?? 0}`,
      String(r.counts.listings),
      String(r.counts.connections),
      (r.counts.bodyBytes / MB).toFixed(1),
      (r.counts.bodyBytes / MB / r.run.seconds).toFixed(1),
      fmtRss(r.run.peakRssKiB),
      ok ? "ok" : r.run.timedOut ? "TIMED OUT" : r.run.code !== 0 ? `EXIT ${r.run.code ?? r.run.signal}` : "WRONG TREE",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of body) console.log(line(row));
  for (const r of rows) if (r.note) console.log(`  ${r.label}: ${r.note}`);
}

function verdict(pass: boolean, text: string): void {
  console.log(`${pass ? "PASS" : "BELOW TARGET"}: ${text}`);
}

async function main(): Promise<void> {
  const benchStarted = performance.now();
  console.log(`update-mirror sync benchmark — node ${process.version}, ${cpus()[0]?.model ?? "unknown CPU"}, availableParallelism ${availableParallelism()}`);
  if (!cliIsBuilt()) return;
  const toolsStarted = performance.now();
  const tools = ensureTools();
  for (const n of tools.notes) console.log(`note: ${n}`);
  const toolSeconds = (performance.now() - toolsStarted) / 1000;
  if (toolSeconds > 1) console.log(`tools: installing took ${toolSeconds.toFixed(0)} s`);

  const gen = await ensureUpstreams();
  console.log(gen.reused ? `upstreams: reusing ${path.relative(repoRoot, v1Dir)} and upstream-v2` : `upstreams: generated and indexed v1 and v2 in ${gen.seconds.toFixed(1)} s`);
  const m1 = await loadManifest(v1Dir);
  const m2 = await loadManifest(v2Dir);
  const before = new Map(m1.files.map((f) => [f.path, f.sha256]));
  const after = new Set(m2.files.map((f) => f.path));
  const added = m2.files.filter((f) => !before.has(f.path));
  const changed = m2.files.filter((f) => before.has(f.path) && before.get(f.path) !== f.sha256);
  const removed = m1.files.filter((f) => !after.has(f.path));
  const v1Bytes = m1.files.reduce((n, f) => n + f.size, 0);
  const deltaBytes = [...added, ...changed].reduce((n, f) => n + f.size, 0);
  console.log(`v1: version ${m1.version}, ${m1.files.length} files, ${(v1Bytes / MB).toFixed(0)} MB (modules ${PARAMS.largeMiB.join("/")} MiB)`);
  console.log(`v2: version ${m2.version}, ${changed.length} changed, ${added.length} added, ${removed.length} removed: ${(deltaBytes / MB).toFixed(1)} MB to fetch`);

  const warmStarted = performance.now();
  const { files: v1Walk } = await walkTree(v1Dir, { skip: skipMetadata });
  warmPageCache([...v1Walk.map((f) => f.absPath), ...[...added, ...changed].map((f) => path.join(v2Dir, ...f.path.split("/")))]);
  warmPageCache([path.join(v1Dir, METADATA_DIR, "manifest.json"), path.join(v2Dir, METADATA_DIR, "manifest.json")]);
  console.log(`page cache: warmed v1 and v2's new files in ${((performance.now() - warmStarted) / 1000).toFixed(1)} s`);

  await removeAndSettle(runsDir);
  mkdirSync(runsDir, { recursive: true });
  const server = await startStaticServer(v1Dir);
  console.log(`server: ${server.url} (one node:http server in this process, nginx-style autoindex)\n`);

  const rows: Row[] = [];
  const compared: Compared[] = [];
  const roundDirOf = (round: number) => path.join(runsDir, `round-${round}`);
  const measure = async (spec: Omit<Row, "run" | "counts" | "problems">, cmd: string, args: readonly string[], dest: string, manifest: Manifest): Promise<Row> => {
    flushWrites();
    server.takeCounts();
    process.stdout.write(`running ${spec.label}… `);
    const run = await runChild(cmd, args, { cwd: repoRoot, timeBin: tools.time });
    const counts = server.takeCounts();
    console.log(`${run.seconds.toFixed(1)} s`);
    const problems = run.code === 0 ? await checkTree(dest, manifest) : [];
    const row: Row = { ...spec, run, counts, problems };
    rows.push(row);
    if (run.code !== 0) console.log(`  ${spec.label} failed (${run.timedOut ? "timed out" : `exit ${run.code ?? run.signal}`}):\n    ${run.tail.trim().split("\n").slice(-12).join("\n    ")}`);
    if (problems.length > 0) console.log(`  ${spec.label}: destination does not match the upstream (${problems.length} problems), e.g.:\n    ${problems.slice(0, 5).join("\n    ")}`);
    const failed = (run.events["file:failed"] ?? 0) + (run.events["file:retry"] ?? 0) + (run.events["file:failover"] ?? 0);
    if (failed > 0) console.log(`  ${spec.label}: ${run.events["file:retry"] ?? 0} retries, ${run.events["file:failover"] ?? 0} failovers, ${run.events["file:failed"] ?? 0} failed files`);
    return row;
  };
  const umArgs = (dest: string, extra: readonly string[] = []) => [binPath, "sync", "--source", server.url, "--dest", dest, "--json", ...extra];
  const reported = (r: ChildRun): string => {
    const moved = r.runDone?.bytes === undefined ? "no run:done event" : `reports ${(r.runDone.bytes / MB).toFixed(1)} MB fetched in ${((r.runDone.elapsedMs ?? 0) / 1000).toFixed(2)} s`;
    // Where the time goes: start-up and plan, then fetching, then publishing (as the events arrive).
    const at = r.firstSeen;
    const plan = at["plan:ready"];
    const fetch = at["file:start"];
    const publish = at["publish:start"];
    if (plan === undefined || fetch === undefined || publish === undefined) return moved;
    return `${moved}; start-up+plan ${plan.toFixed(1)} s, plan->first file ${(fetch - plan).toFixed(1)} s, fetch ${(publish - fetch).toFixed(1)} s, publish ${(r.seconds - publish).toFixed(1)} s`;
  };

  // The full syncs that are compared run in rounds, each contender once per round in a rotated order,
  // and are judged on their medians: one run each cannot tell 10% apart on a shared 2-core machine.
  const contenders: Contender[] = [
    { key: "default", label: "update-mirror full (default concurrency)", tool: "update-mirror", rows: [], cmd: process.execPath, args: (dest) => umArgs(dest) },
    { key: `c${TOOL_CONCURRENCY}`, label: `update-mirror full --concurrency ${TOOL_CONCURRENCY}`, tool: "update-mirror", rows: [], cmd: process.execPath, args: (dest) => umArgs(dest, ["--concurrency", String(TOOL_CONCURRENCY)]) },
    ...(tools.rclone
      ? [{ key: "rclone", label: `rclone sync --transfers ${TOOL_CONCURRENCY}`, tool: "rclone" as const, rows: [], cmd: tools.rclone, args: (dest: string) => ["sync", "--http-url", server.url, ":http:", dest, "--transfers", String(TOOL_CONCURRENCY)] }]
      : []),
  ];
  compared.push(...contenders);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const roundDir = roundDirOf(round + 1);
      const order = contenders.map((_, i) => contenders[(i + round) % contenders.length] as Contender);
      for (const c of order) {
        const dest = path.join(roundDir, c.key);
        const row = await measure({ label: `${c.label} [round ${round + 1}]`, kind: "full", tool: c.tool, ...(c.tool === "update-mirror" && { expectedRequests: m1.files.length + 1 }) }, c.cmd, c.args(dest), dest, m1);
        row.note = c.tool === "update-mirror" ? reported(row.run) : "no manifest: lists every folder, HEADs every file for size/mtime, then GETs";
        c.rows.push(row);
      }
      // The last round's trees stay: the no-op and delta syncs start from its default-concurrency mirror.
      if (round < ROUNDS - 1) await removeAndSettle(roundDir);
    }

    if (tools.aria2c) {
      const dest = path.join(runsDir, "aria2c");
      // The payload URLs, as a vendor's file list would give them; the manifest is not in it.
      writeAria2List(m1.files, server.url, dest);
      const r = await measure(
        { label: `aria2c -j ${TOOL_CONCURRENCY} -x 1`, kind: "full", tool: "aria2c", expectedRequests: m1.files.length },
        tools.aria2c,
        ["-j", String(TOOL_CONCURRENCY), "-x", "1", "-i", aria2List, "-d", dest, "--allow-overwrite=true", "--auto-file-renaming=false", "--console-log-level=warn", "--summary-interval=0"],
        dest,
        m1,
      );
      r.note = "fed the URL list: no listing, no verification against a manifest; one run (several times slower than the others, so noise cannot change its verdict)";
      compared.push({ label: r.label, tool: "aria2c", rows: [r] });
    }

    // The last round's default-concurrency mirror, kept for this.
    const umDefault = path.join(roundDirOf(ROUNDS), "default");
    const noop = await measure({ label: "update-mirror no-op (v1 again)", kind: "no-op", tool: "update-mirror", expectedRequests: 1 }, process.execPath, umArgs(umDefault), umDefault, m1);
    noop.note = `${JSON.stringify(noop.counts.byStatus)} by status; ${noop.run.runDone?.result ?? "no run:done"}`;
    server.root = v2Dir;
    const delta = await measure(
      { label: "update-mirror delta to v2", kind: "delta", tool: "update-mirror", expectedRequests: changed.length + added.length + 1 },
      process.execPath,
      umArgs(umDefault),
      umDefault,
      m2,
    );
    delta.note = `${reported(delta.run)}; summary ${delta.run.runDone?.added ?? "?"} added, ${delta.run.runDone?.updated ?? "?"} updated, ${delta.run.runDone?.removed ?? "?"} removed`;
  } finally {
    await server.close();
  }

  console.log("");
  printTable(rows);
  console.log("");

  const medians = compared.map((c) => ({ ...c, median: median(c.rows.filter((r) => r.run.code === 0).map((r) => r.run.seconds)) }));
  console.log(`full sync, median of ${ROUNDS} round(s) (aria2c: one run):`);
  for (const m of medians) console.log(`  ${m.label}: ${m.median === undefined ? "no successful run" : `${m.median.toFixed(2)} s`} (${m.rows.map((r) => r.run.seconds.toFixed(1)).join(", ")})`);
  const ours = medians.filter((m) => m.tool === "update-mirror");
  const others = medians.filter((m) => m.tool !== "update-mirror");
  for (const o of others) {
    for (const u of ours) {
      if (u.median !== undefined && o.median !== undefined) console.log(`ratio: ${u.label} / ${o.label} = ${(u.median / o.median).toFixed(2)} (below 1 = we are faster)`);
    }
  }
  console.log("");
  const noop = rows.find((r) => r.kind === "no-op");
  if (noop) verdict(noop.counts.requests === 1, `no-op sync took ${noop.counts.requests} request(s); target exactly 1`);
  const delta = rows.find((r) => r.kind === "delta");
  if (delta) verdict(delta.counts.requests === delta.expectedRequests, `delta sync took ${delta.counts.requests} requests; target changed ${changed.length} + added ${added.length} + 1 = ${delta.expectedRequests}`);
  for (const u of ours) {
    for (const o of others) {
      if (u.median === undefined || o.median === undefined) console.log(`SKIPPED: ${u.label} vs ${o.label}: no successful run of ${u.median === undefined ? u.label : o.label}`);
      else verdict(u.median <= o.median, `${u.label} ${u.median.toFixed(2)} s vs ${o.label} ${o.median.toFixed(2)} s (medians)`);
    }
  }
  if (!tools.rclone) console.log("SKIPPED: full sync vs rclone (rclone unavailable)");
  if (!tools.aria2c) console.log("SKIPPED: full sync vs aria2c (aria2c unavailable)");
  const rss = rows.filter((r) => r.tool === "update-mirror" && r.run.peakRssKiB !== null);
  if (rss.length > 0) {
    const worst = rss.reduce((a, b) => ((b.run.peakRssKiB ?? 0) > (a.run.peakRssKiB ?? 0) ? b : a));
    verdict((worst.run.peakRssKiB ?? 0) * 1024 < RSS_TARGET_BYTES, `update-mirror peak RSS ${fmtRss(worst.run.peakRssKiB)} (${worst.label}); target < ${RSS_TARGET_BYTES / MB} MB`);
  } else console.log("SKIPPED: peak RSS (no reading)");

  const failed = rows.filter((r) => r.run.code !== 0 || r.problems.length > 0);
  if (failed.length === 0) rmSync(runsDir, { recursive: true, force: true });
  else console.log(`\nFAILED runs: ${failed.map((r) => r.label).join(", ")} (destinations kept under ${path.relative(repoRoot, runsDir)})`);
  console.log(`\nbench took ${((performance.now() - benchStarted) / 1000).toFixed(0)} s; single runs vary by ±10-20% on a shared machine; the comparisons use medians`);
  console.log("(informational: this never fails for being slow; it fails only when a tool run itself fails)");
  if (failed.length > 0) process.exitCode = 1;
}

await main();
