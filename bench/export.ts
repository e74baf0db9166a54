// Export benchmark: `update-mirror export` of the sync bench's ~40,000-file tree to a folder, zip and tar, against `cp -a` and `tar -cf`.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../", import.meta.url));
const tree = path.join(repoRoot, ".bench", "sync", "upstream-v1");
const out = path.join(repoRoot, ".bench", "export");
const bin = path.join(repoRoot, "bin", "update-mirror.js");
const MB = 1e6;
const FOLDER_TARGET = 0.7;

interface Timed {
  label: string;
  seconds: number;
  peakMB: number | null;
  ok: boolean;
  detail: string;
}

/** Runs a command under GNU time when present (wall seconds and peak RSS); dirty pages are flushed first so each run pays for its own writes. */
function timed(label: string, cmd: string, args: readonly string[]): Timed {
  spawnSync("sync");
  const rssFile = path.join(tmpdir(), `update-mirror-export-bench-${process.pid}.txt`);
  const useTime = existsSync("/usr/bin/time");
  const started = performance.now();
  const res = useTime ? spawnSync("/usr/bin/time", ["-f", "%M", "-o", rssFile, cmd, ...args], { encoding: "utf8" }) : spawnSync(cmd, args, { encoding: "utf8" });
  // The flush of what the run wrote is part of its cost: cp and tar would otherwise look free.
  spawnSync("sync");
  const seconds = (performance.now() - started) / 1000;
  let peakMB: number | null = null;
  if (useTime && existsSync(rssFile)) {
    const kib = Number.parseInt(readFileSync(rssFile, "utf8").trim().split("\n").pop() ?? "", 10);
    peakMB = Number.isFinite(kib) ? (kib * 1024) / MB : null;
    rmSync(rssFile, { force: true });
  }
  const ok = res.status === 0;
  return { label, seconds, peakMB, ok, detail: ok ? "" : `${(res.stderr || res.stdout || String(res.error)).trim().split("\n").slice(-4).join(" / ")}` };
}

function main(): void {
  if (!existsSync(path.join(tree, ".update-mirror", "manifest.json"))) {
    console.log(`${path.relative(repoRoot, tree)} missing: run the sync bench first (npm run bench runs it before this one)`);
    process.exitCode = 1;
    return;
  }
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const bytes = Number(spawnSync("du", ["-sb", "--exclude=.update-mirror", tree], { encoding: "utf8" }).stdout.split("\t")[0]);
  console.log(`export benchmark — ${path.relative(repoRoot, tree)}: ${(bytes / MB).toFixed(0)} MB; each run ends with a sync(1) so written data is counted`);
  const rows: Timed[] = [
    timed("cp -a (reference)", "cp", ["-a", tree, path.join(out, "cp")]),
    timed("update-mirror export -> folder", process.execPath, [bin, "export", tree, "--to", path.join(out, "folder")]),
    timed("tar -cf (reference)", "tar", ["-cf", path.join(out, "ref.tar"), "-C", tree, "."]),
    timed("update-mirror export -> .tar", process.execPath, [bin, "export", tree, "--to", path.join(out, "full.tar")]),
    timed("update-mirror export -> .zip", process.execPath, [bin, "export", tree, "--to", path.join(out, "full.zip")]),
    timed("update-mirror export -> .tar, 100M volumes", process.execPath, [bin, "export", tree, "--to", path.join(out, "split.tar"), "--split-size", "100M"]),
  ];
  for (const r of rows) {
    const rate = `${(bytes / MB / r.seconds).toFixed(0)} MB/s`;
    console.log(`${r.label.padEnd(46)} ${r.seconds.toFixed(2).padStart(7)} s  ${rate.padStart(9)}  peak RSS ${r.peakMB === null ? "n/a" : `${r.peakMB.toFixed(0)} MB`}${r.ok ? "" : `  FAILED: ${r.detail}`}`);
  }
  const cp = rows[0] as Timed;
  const folder = rows[1] as Timed;
  if (cp.ok && folder.ok) {
    const ratio = cp.seconds / folder.seconds;
    console.log(`${ratio >= FOLDER_TARGET ? "PASS" : "BELOW TARGET"}: folder export runs at ${ratio.toFixed(2)}x the speed of cp -a; target >= ${FOLDER_TARGET}x`);
  }
  if (rows.some((r) => !r.ok)) process.exitCode = 1;
  else rmSync(out, { recursive: true, force: true });
}

main();
