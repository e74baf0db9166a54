// Hashing benchmark: `update-mirror index` and the hash pool on 40,000 small + 3 large files, against single-core sha256.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { walkTree } from "../src/fs/walk.js";
import type { WalkEntry } from "../src/fs/walk.js";
import { createHashPool } from "../src/hash/hash-pool.js";
import { prng, randomBuffer } from "./random.js";
import { writeBenchTree } from "./tree.js";
import { watchPeakRss } from "./peak-rss.js";

const repoRoot = fileURLToPath(new URL("../", import.meta.url));
const benchDir = path.join(repoRoot, ".bench");
const treeDir = path.join(benchDir, "tree");
const markerFile = path.join(benchDir, "tree.params.json");
const METADATA_DIR = ".update-mirror";
const MiB = 1024 * 1024;
const RUNS = 3;

// Changing any of these (or the generator) regenerates the tree; bump `generator` when the code changes.
const PARAMS = {
  generator: 1,
  seed: 0x5eed_2024,
  smallFiles: 40_000,
  filesPerFolder: 200,
  topFolders: 10,
  minSize: 200,
  maxSize: 24 * 1024,
  largeMiB: [64, 128, 192],
};

function ensureTree(): { reused: boolean; seconds: number } {
  const wanted = JSON.stringify(PARAMS);
  if (existsSync(markerFile) && existsSync(treeDir) && readFileSync(markerFile, "utf8") === wanted) {
    return { reused: true, seconds: 0 };
  }
  const started = performance.now();
  rmSync(markerFile, { force: true });
  rmSync(treeDir, { recursive: true, force: true });
  mkdirSync(treeDir, { recursive: true });
  writeBenchTree(treeDir, PARAMS, { folder: "large", name: (mib) => `large-${mib}MiB.bin` }, prng(PARAMS.seed));
  // Written last, so an interrupted generation is redone rather than reused.
  writeFileSync(markerFile, wanted);
  return { reused: false, seconds: (performance.now() - started) / 1000 };
}

/** Single-core sha256 on bytes already in memory: the ceiling one worker could reach. */
function baselineMBps(): number {
  const data = randomBuffer(256 * MiB, prng(1));
  const rates: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const started = performance.now();
    const hash = createHash("sha256");
    for (let off = 0; off < data.length; off += MiB) hash.update(data.subarray(off, off + MiB));
    hash.digest();
    rates.push(data.length / 1e6 / ((performance.now() - started) / 1000));
  }
  return median(rates);
}

function warmPageCache(files: readonly WalkEntry[]): void {
  const buf = Buffer.allocUnsafe(4 * MiB);
  for (const f of files) {
    const fd = openSync(f.absPath, "r");
    try {
      while (readSync(fd, buf, 0, buf.length, null) > 0) {
        // reading is the point
      }
    } finally {
      closeSync(fd);
    }
  }
}

interface ChildRun {
  seconds: number;
  code: number | null;
  stdout: string;
  stderr: string;
  peakRssKiB: number | null;
}

const TIME_BIN = "/usr/bin/time";

/** Runs the CLI; peak RSS from GNU time if present, else by polling VmHWM in /proc while it runs. */
function runCli(args: readonly string[]): Promise<ChildRun> {
  const useTime = existsSync(TIME_BIN);
  const rssFile = path.join(tmpdir(), `update-mirror-bench-rss-${process.pid}.txt`);
  const cmd = useTime ? TIME_BIN : process.execPath;
  const argv = useTime ? ["-f", "%M", "-o", rssFile, process.execPath, ...args] : [...args];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, argv, { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      stdout += s;
    });
    child.stderr.setEncoding("utf8").on("data", (s: string) => {
      stderr += s;
    });
    const peakRss = watchPeakRss(child, useTime ? rssFile : undefined);
    child.on("error", reject);
    child.on("close", (code) => {
      const seconds = (performance.now() - started) / 1000;
      const peakRssKiB = peakRss();
      resolve({ seconds, code, stdout, stderr, peakRssKiB });
    });
  });
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

interface Row {
  what: string;
  seconds: number;
  bytes: number;
  files: number;
  peakRssKiB?: number | null;
  note?: string;
}

async function main(): Promise<void> {
  const workers = Math.max(1, Math.min(availableParallelism(), 8));
  console.log(`update-mirror hashing benchmark — node ${process.version}, ${cpus()[0]?.model ?? "unknown CPU"}, availableParallelism ${availableParallelism()}`);

  const gen = ensureTree();
  console.log(gen.reused ? `tree: reusing ${path.relative(repoRoot, treeDir)}` : `tree: generated ${path.relative(repoRoot, treeDir)} in ${gen.seconds.toFixed(1)} s`);

  const skip = (rel: string, isDir: boolean): boolean => isDir && rel === METADATA_DIR;
  const walkStarted = performance.now();
  const { files, refused } = await walkTree(treeDir, { skip });
  const walkSeconds = (performance.now() - walkStarted) / 1000;
  if (refused.length > 0) throw new Error(`bench tree has entries the walker refuses:\n${refused.join("\n")}`);
  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  const large = files.filter((f) => f.size >= 4 * MiB);
  const small = files.filter((f) => f.size < 4 * MiB);
  console.log(`tree: ${files.length} files, ${(totalBytes / 1e6).toFixed(0)} MB (${small.length} small, ${large.length} large); walk ${(walkSeconds * 1000).toFixed(0)} ms`);

  const baseline = baselineMBps();
  const target = 0.8 * baseline * workers;
  console.log(`baseline: sha256 on one core, 256 MiB in memory, 1 MiB updates: ${baseline.toFixed(0)} MB/s (median of ${RUNS})`);
  console.log(`target: 0.8 × ${baseline.toFixed(0)} MB/s × ${workers} workers = ${target.toFixed(0)} MB/s`);

  warmPageCache(files);
  console.log("page cache: warmed (every file read once)\n");

  const rows: Row[] = [];
  let failed = false;

  // The pool alone, in this process, shows how much of the CLI's time is hashing.
  const pool = createHashPool({ workers });
  try {
    // Untimed warm-up: large files go one per batch, so every worker starts (and loads tsx) before timing.
    await Promise.all(large.map((f) => pool.hashFile(f.absPath, f.size)));
    const timePool = async (label: string, set: readonly WalkEntry[]): Promise<void> => {
      const times: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const started = performance.now();
        await Promise.all(set.map((f) => pool.hashFile(f.absPath, f.size)));
        times.push((performance.now() - started) / 1000);
      }
      rows.push({ what: label, seconds: median(times), bytes: set.reduce((n, f) => n + f.size, 0), files: set.length });
    };
    await timePool(`pool, all files (${pool.workers} workers)`, files);
    await timePool("pool, small files only", small);
    await timePool("pool, large files only", large);
  } finally {
    await pool.close();
  }

  const binPath = path.join(repoRoot, "bin", "update-mirror.js");
  const cliMain = path.join(repoRoot, "dist", "cli", "main.js");
  if (!existsSync(binPath) || !existsSync(cliMain)) {
    console.log(`CLI: skipped (${existsSync(binPath) ? "dist/cli/main.js missing; run npm run build" : "bin/update-mirror.js missing"})\n`);
  } else {
    const runs: ChildRun[] = [];
    for (let r = 0; r < RUNS; r++) {
      // Start from scratch each time, so every run does the same work.
      rmSync(path.join(treeDir, METADATA_DIR), { recursive: true, force: true });
      const res = await runCli([binPath, "index", treeDir]);
      if (res.code !== 0) {
        console.log(`CLI: \`update-mirror index\` exited with ${res.code}:\n${res.stderr.trim() || res.stdout.trim()}\n`);
        failed = true;
        break;
      }
      runs.push(res);
    }
    if (runs.length === RUNS) {
      const rss = runs.map((r) => r.peakRssKiB).filter((k): k is number => k !== null);
      const row: Row = {
        what: "CLI `update-mirror index` (incl. node start, walk, manifest)",
        seconds: median(runs.map((r) => r.seconds)),
        bytes: totalBytes,
        files: files.length,
        peakRssKiB: rss.length > 0 ? Math.max(...rss) : null,
      };
      if (rss.length === 0) row.note = "peak RSS unavailable (no /usr/bin/time, no /proc)";
      rows.unshift(row);
      const last = runs[runs.length - 1];
      if (last) console.log(`CLI output (last run):\n  ${last.stdout.trim().split("\n").join("\n  ")}\n`);
    }
  }

  printTable(rows, target);
  if (failed) process.exitCode = 1;
}

function printTable(rows: readonly Row[], target: number): void {
  const header = ["what", "median s", "MB/s", "files/s", "peak RSS", "vs target", "verdict"];
  const body = rows.map((r) => {
    const mbps = r.bytes / 1e6 / r.seconds;
    const ratio = mbps / target;
    return [
      r.what,
      r.seconds.toFixed(3),
      mbps.toFixed(0),
      (r.files / r.seconds).toFixed(0),
      r.peakRssKiB === undefined ? "-" : r.peakRssKiB === null ? "n/a" : `${(r.peakRssKiB / 1024).toFixed(0)} MiB`,
      `${(ratio * 100).toFixed(0)}%`,
      ratio >= 1 ? "PASS" : "BELOW TARGET",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of body) console.log(line(row));
  for (const r of rows) if (r.note) console.log(`note: ${r.note}`);
  const headline = rows[0];
  if (headline) {
    const ratio = headline.bytes / 1e6 / headline.seconds / target;
    console.log(`\n${ratio >= 1 ? "PASS" : "BELOW TARGET"}: ${headline.what} at ${(ratio * 100).toFixed(0)}% of target`);
  }
  console.log("\n(informational: this never fails for being slow; wall times are noisy on shared machines)");
}

await main();
