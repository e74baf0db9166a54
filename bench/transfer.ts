// Transfer benchmark: `update-mirror sync` reading from FTP (vsftpd) and SMB (Samba) and writing onto an SMB share, one 200 MB file and 2,000 small files, against curl and smbclient moving the same bytes.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, closeSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { connect } from "node:net";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { METADATA_DIR } from "../src/mirror/layout.js";
import { binPath, childEnv, type ChildRun, cliIsBuilt, fmtRss, runChild } from "./child-run.js";
import { prng } from "./random.js";
import { aptInstall, findExecutable } from "./tools.js";
import { contentMaker } from "./tree.js";

const repoRoot = fileURLToPath(new URL("../", import.meta.url));
const benchDir = path.join(repoRoot, ".bench", "transfer");
const sourceDir = path.join(benchDir, "source");
const markerFile = path.join(benchDir, "source.params.json");
const runsDir = path.join(benchDir, "runs");
const MiB = 1024 * 1024;
const MB = 1e6;
/** Ours passes when it takes at most this many times the tool's seconds (informational, like the other benches). */
const TARGET_RATIO = 2;
/** The environment variables our runs read their passwords from (by reference, never on the command line). */
const FTP_PASSWORD_ENV = "UM_BENCH_FTP_PASSWORD";
const SMB_PASSWORD_ENV = "UM_BENCH_SMB_PASSWORD";

// UM_BENCH_SCALE=0.05 shrinks both cases (10 MB and 100 files) for a quick run while developing.
const SCALE = Number(process.env.UM_BENCH_SCALE ?? "1");
if (!Number.isFinite(SCALE) || SCALE <= 0 || SCALE > 5) throw new Error(`UM_BENCH_SCALE must be a number in (0, 5] (file names have 4 digits), not ${process.env.UM_BENCH_SCALE}`);

// Changing any of these (or the generator) regenerates the source trees; bump `generator` when the code changes.
const PARAMS = {
  generator: 1,
  seed: 0x5eed_7a11,
  largeBytes: Math.round(200 * MB * SCALE),
  smallFiles: Math.max(10, Math.round(2000 * SCALE)),
  minSize: 1024,
  maxSize: 16 * 1024,
};
const LARGE_NAME = "large.bin";
const smallName = (i: number) => `f${String(i).padStart(4, "0")}.bin`;

/** One case: a flat folder of files under sourceDir, its name, and what every copy of it must hold. */
interface Case {
  key: "large" | "small";
  title: string;
  dir: string;
  files: Map<string, { size: number; sha256: string }>;
  bytes: number;
}

function sha256File(file: string): string {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(4 * MiB);
  const fd = openSync(file, "r");
  try {
    for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null)) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

function writeSources(): void {
  const next = prng(PARAMS.seed);
  const { slice, smallSize } = contentMaker(next, PARAMS);
  const large = path.join(sourceDir, "large");
  mkdirSync(large, { recursive: true });
  const fd = openSync(path.join(large, LARGE_NAME), "w");
  try {
    for (let written = 0; written < PARAMS.largeBytes; written += 4 * MiB) writeSync(fd, slice(Math.min(4 * MiB, PARAMS.largeBytes - written)));
  } finally {
    closeSync(fd);
  }
  const small = path.join(sourceDir, "small");
  mkdirSync(small, { recursive: true });
  for (let i = 0; i < PARAMS.smallFiles; i++) writeFileSync(path.join(small, smallName(i)), slice(smallSize()));
}

/** Generates the source trees unless the ones on disk were made with the same parameters; hashes them (which also warms the page cache). */
function ensureSources(): { cases: Case[]; generated: boolean; seconds: number } {
  const started = performance.now();
  const wanted = JSON.stringify(PARAMS);
  const reuse = existsSync(markerFile) && readFileSync(markerFile, "utf8") === wanted;
  if (!reuse) {
    rmSync(markerFile, { force: true });
    rmSync(sourceDir, { recursive: true, force: true });
    writeSources();
    // Written last, so an interrupted generation is redone rather than reused.
    writeFileSync(markerFile, wanted);
  }
  const load = (key: Case["key"], title: string): Case => {
    const dir = path.join(sourceDir, key);
    const files = new Map<string, { size: number; sha256: string }>();
    let bytes = 0;
    for (const name of readdirSync(dir).sort()) {
      const file = path.join(dir, name);
      const size = statSync(file).size;
      files.set(name, { size, sha256: sha256File(file) });
      bytes += size;
    }
    return { key, title, dir, files, bytes };
  };
  const cases = [load("large", `one ${(PARAMS.largeBytes / MB).toFixed(0)} MB file`), load("small", `${PARAMS.smallFiles.toLocaleString("en")} small files`)];
  return { cases, generated: !reuse, seconds: (performance.now() - started) / 1000 };
}

/** Compares a flat folder with a case (names, sizes and SHA-256 of every file; a mirror's own metadata folder left out). */
function checkCopy(dir: string, c: Case): string[] {
  if (!existsSync(dir)) return [`${dir} does not exist`];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === METADATA_DIR) continue;
    const want = c.files.get(entry.name);
    if (!want || !entry.isFile()) {
      problems.push(`unexpected ${entry.isDirectory() ? "folder" : "file"} ${entry.name}`);
      continue;
    }
    seen.add(entry.name);
    const file = path.join(dir, entry.name);
    const size = statSync(file).size;
    if (size !== want.size) problems.push(`${entry.name}: ${size} bytes, expected ${want.size}`);
    else if (sha256File(file) !== want.sha256) problems.push(`${entry.name}: wrong content`);
  }
  for (const name of c.files.keys()) if (!seen.has(name)) problems.push(`missing ${name}`);
  return problems;
}

// --- the services of .ci/services.sh

interface Services {
  ftp?: { host: string; port: number; user: string; password: string; root: string };
  smb?: { host: string; port: number; share: string; user: string; password: string; root: string };
  notes: string[];
  skips: string[];
}

/** `export K=V` / `export K='V'` lines, as `bash .ci/services.sh env` prints them. */
function parseExports(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] === undefined || m[2] === undefined) continue;
    const raw = m[2];
    out[m[1]] = raw.startsWith("'") && raw.endsWith("'") && raw.length >= 2 ? raw.slice(1, -1) : raw;
  }
  return out;
}

function reachable(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

const UP_HINT = "run `bash .ci/services.sh up` as root";

async function findServices(): Promise<Services> {
  const services: Services = { notes: [], skips: [] };
  const keys = ["UM_FTP_URL", "UM_FTP_USER", "UM_FTP_PASSWORD", "UM_FTP_ROOT", "UM_SMB_URL", "UM_SMB_USER", "UM_SMB_PASSWORD", "UM_SMB_ROOT"];
  let env: Record<string, string | undefined> = process.env;
  if (keys.some((k) => !process.env[k])) {
    // `npm run bench` does not eval the services' variables: ask the script (it only prints them, it starts nothing).
    const res = spawnSync("bash", [path.join(repoRoot, ".ci", "services.sh"), "env"], { encoding: "utf8", timeout: 30_000 });
    if (res.status === 0) {
      env = { ...parseExports(res.stdout), ...Object.fromEntries(keys.filter((k) => process.env[k]).map((k) => [k, process.env[k]])) };
      services.notes.push("service settings from `bash .ci/services.sh env` (they were not in the environment)");
    } else services.notes.push(`\`bash .ci/services.sh env\` failed (${(res.stderr || String(res.error)).trim().split("\n").pop()})`);
  }
  const ftpUrl = env.UM_FTP_URL;
  if (!ftpUrl || !env.UM_FTP_USER || !env.UM_FTP_PASSWORD || !env.UM_FTP_ROOT) services.skips.push(`FTP rows: no UM_FTP_* settings (${UP_HINT})`);
  else {
    const u = new URL(ftpUrl);
    const port = Number(u.port || "21");
    if (!(await reachable(u.hostname, port))) services.skips.push(`FTP rows: nothing listens on ${u.hostname}:${port} (vsftpd is not up; ${UP_HINT})`);
    else if (!existsSync(env.UM_FTP_ROOT)) services.skips.push(`FTP rows: the FTP user's home ${env.UM_FTP_ROOT} does not exist (${UP_HINT})`);
    else services.ftp = { host: u.hostname, port, user: env.UM_FTP_USER, password: env.UM_FTP_PASSWORD, root: env.UM_FTP_ROOT };
  }
  const smbUrl = env.UM_SMB_URL;
  if (!smbUrl || !env.UM_SMB_USER || !env.UM_SMB_PASSWORD || !env.UM_SMB_ROOT) services.skips.push(`SMB rows: no UM_SMB_* settings (${UP_HINT})`);
  else {
    const u = new URL(smbUrl);
    const port = Number(u.port || "445");
    const share = u.pathname.split("/").filter((s) => s !== "")[0] ?? "";
    if (!(await reachable(u.hostname, port))) services.skips.push(`SMB rows: nothing listens on ${u.hostname}:${port} (Samba is not up; ${UP_HINT})`);
    else if (!existsSync(env.UM_SMB_ROOT)) services.skips.push(`SMB rows: the share's folder ${env.UM_SMB_ROOT} does not exist (${UP_HINT})`);
    else services.smb = { host: u.hostname, port, share, user: env.UM_SMB_USER, password: env.UM_SMB_PASSWORD, root: env.UM_SMB_ROOT };
  }
  return services;
}

// --- folders written into the FTP home and the share: every one is removed at the end, or on Ctrl-C

const served = new Set<string>();

/** A fresh folder below a server's tree (`mode`: 0755 to be read by the server's user, 0777 to be written by it). */
function servedFolder(root: string, prefix: string, mode: number): { dir: string; name: string } {
  const dir = mkdtempSync(path.join(root, `${prefix}-`));
  served.add(dir);
  chmodSync(dir, mode);
  return { dir, name: path.basename(dir) };
}

function removeServed(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  served.delete(dir);
}

/** Puts a case's files into `dir`: hard links where the file system allows (the same bytes, no copy time), copies otherwise. */
function linkCase(c: Case, dir: string): void {
  for (const name of c.files.keys()) {
    try {
      linkSync(path.join(c.dir, name), path.join(dir, name));
    } catch {
      copyFileSync(path.join(c.dir, name), path.join(dir, name));
    }
  }
}

// --- running one tool

let running: number | undefined;

interface Row {
  case: Case;
  /** "FTP read", "SMB read", "SMB write". */
  path: string;
  label: string;
  ours: boolean;
  command: string;
  run: ChildRun;
  /** The sync(1) after the run: what it left for the disk to write is part of its cost. */
  syncSeconds: number;
  problems: string[];
  note?: string;
}

const total = (r: Row) => r.run.seconds + r.syncSeconds;
const ok = (r: Row) => r.run.code === 0 && r.problems.length === 0;

/** A command line as it could be typed (the bench passes the arguments without a shell). */
function shown(cmd: string, args: readonly string[]): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
  return [cmd === process.execPath ? "node" : cmd, ...args.map((a) => quote(a.startsWith(repoRoot) ? path.relative(repoRoot, a) || "." : a))].join(" ");
}

function phases(r: ChildRun): string | undefined {
  const at = r.firstSeen;
  const plan = at["plan:ready"];
  const fetch = at["file:start"];
  const publish = at["publish:start"];
  if (plan === undefined || fetch === undefined || publish === undefined) return undefined;
  return `start-up+list+plan ${plan.toFixed(2)} s, plan->first file ${(fetch - plan).toFixed(2)} s, transfer ${(publish - fetch).toFixed(2)} s, publish ${(r.seconds - publish).toFixed(2)} s`;
}


function rate(r: Row): string {
  const s = total(r);
  const mbs = `${(r.case.bytes / MB / s).toFixed(1)} MB/s`;
  return r.case.key === "small" ? `${(r.case.files.size / s).toFixed(0)} files/s (${mbs})` : mbs;
}

function printTable(rows: readonly Row[]): void {
  const header = ["case", "path", "tool", "seconds", "of which sync", "rate", "ours/tool", "peak RSS", "result"];
  const body = rows.map((r) => {
    const ours = rows.find((o) => o.ours && o.case === r.case && o.path === r.path);
    const ratio = !r.ours && ours && ok(ours) && ok(r) ? `${(total(ours) / total(r)).toFixed(2)}` : "";
    return [
      r.case.title,
      r.path,
      r.label,
      total(r).toFixed(2),
      r.syncSeconds.toFixed(2),
      rate(r),
      ratio,
      fmtRss(r.run.peakRssKiB),
      ok(r) ? "ok" : r.run.timedOut ? "TIMED OUT" : r.run.code !== 0 ? `EXIT ${r.run.code ?? r.run.signal}` : "WRONG TREE",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const left = new Set([0, 1, 2]);
  const line = (cells: readonly string[]): string => cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of body) console.log(line(row));
}

/** Reads a tool's stdout as it runs, and says what it saw after. */
interface StdoutWatch {
  onLine(line: string): void;
  note(): string | undefined;
}

/**
 * curl -w '%{time_pretransfer}\n' gives one line per transfer. A transfer that needs about a second
 * before its RETR waited out TCP's initial 1 s SYN retransmission timeout on its passive data connection
 * (the kernel's TcpRetransSegs rises by one per stall). Seen with one curl fetching files one after the
 * other, about 1 in 30, while vsftpd's 50 passive ports held over a thousand TIME_WAIT connections
 * (this bench's and the test suites'): most likely a SYN meeting a TIME_WAIT entry of the same ports.
 */
function curlWatch(): StdoutWatch {
  let transfers = 0;
  let slow = 0;
  let slowSeconds = 0;
  return {
    onLine(line) {
      const t = Number(line.trim());
      if (line.trim() === "" || !Number.isFinite(t)) return;
      transfers += 1;
      if (t >= 0.9) {
        slow += 1;
        slowSeconds += t;
      }
    },
    note: () => (slow === 0 ? undefined : `${slow} of ${transfers} transfers took >= 0.9 s before RETR (${slowSeconds.toFixed(1)} s in all): the 1 s TCP SYN retransmission on the passive data connection`),
  };
}

interface Tools {
  curl?: string;
  smbclient?: string;
  time?: string;
  notes: string[];
}

function ensureTools(services: Services): Tools {
  const wanted = [
    { name: "time", pkg: "time", bin: "/usr/bin/time", needed: true },
    { name: "curl", pkg: "curl", bin: findExecutable("curl"), needed: services.ftp !== undefined },
    { name: "smbclient", pkg: "smbclient", bin: findExecutable("smbclient"), needed: services.smb !== undefined },
  ];
  const missing = wanted.filter((w) => w.needed && (w.bin === undefined || !existsSync(w.bin)));
  const failure = aptInstall(missing.map((m) => m.pkg));
  const tools: Tools = { notes: [] };
  if (existsSync("/usr/bin/time")) tools.time = "/usr/bin/time";
  else tools.notes.push(`/usr/bin/time unavailable (${failure ?? "not installed"}): peak RSS comes from polling /proc/PID/status VmHWM`);
  const curl = findExecutable("curl");
  if (curl) tools.curl = curl;
  else if (services.ftp) tools.notes.push(`curl rows skipped: ${failure ?? "curl not found after installing"}`);
  const smbclient = findExecutable("smbclient");
  if (smbclient) tools.smbclient = smbclient;
  else if (services.smb) tools.notes.push(`smbclient rows skipped: ${failure ?? "smbclient not found after installing"}`);
  return tools;
}

async function main(): Promise<void> {
  const benchStarted = performance.now();
  console.log(`update-mirror transfer benchmark (FTP and SMB) — node ${process.version}, ${cpus()[0]?.model ?? "unknown CPU"}, availableParallelism ${availableParallelism()}, load ${loadavg()[0]?.toFixed(2)}`);
  if (SCALE !== 1) console.log(`UM_BENCH_SCALE=${SCALE}: a scaled-down run, not the benchmark's sizes`);
  if (!cliIsBuilt()) return;
  const services = await findServices();
  for (const n of services.notes) console.log(`note: ${n}`);
  for (const s of services.skips) console.log(`SKIPPED: ${s}`);
  if (!services.ftp && !services.smb) {
    console.log("nothing to measure: neither vsftpd nor Samba is reachable");
    return;
  }
  const tools = ensureTools(services);
  for (const n of tools.notes) console.log(`note: ${n}`);

  const gen = ensureSources();
  const [large, small] = gen.cases as [Case, Case];
  console.log(
    `sources: ${gen.generated ? "generated and hashed" : "reusing and hashing"} ${path.relative(repoRoot, sourceDir)} in ${gen.seconds.toFixed(1)} s: ${large.title} (${large.bytes.toLocaleString("en")} bytes), ${small.title} of ${PARAMS.minSize}-${PARAMS.maxSize} bytes (${(small.bytes / MB).toFixed(1)} MB) in one folder`,
  );
  console.log("each run starts after a sync(1) and its time includes the sync(1) after it, so bytes left in the page cache are counted");
  console.log(`update-mirror runs with its defaults (--concurrency 4; FTP: a pool of 4 connections; SMB: one connection, 1 MiB reads/writes, 4 in flight per file)\n`);

  rmSync(runsDir, { recursive: true, force: true });
  mkdirSync(runsDir, { recursive: true });
  // curl's netrc and smbclient's auth file: credentials in files only we can read, never on a command line.
  const secrets = mkdtempSync(path.join(tmpdir(), "update-mirror-transfer-bench-"));
  const netrc = path.join(secrets, "netrc");
  const smbAuth = path.join(secrets, "smbclient.auth");
  if (services.ftp) writeFileSync(netrc, `machine ${services.ftp.host} login ${services.ftp.user} password ${services.ftp.password}\n`, { mode: 0o600 });
  if (services.smb) writeFileSync(smbAuth, `username = ${services.smb.user}\npassword = ${services.smb.password}\n`, { mode: 0o600 });
  const oursEnv = { ...childEnv, [FTP_PASSWORD_ENV]: services.ftp?.password ?? "", [SMB_PASSWORD_ENV]: services.smb?.password ?? "" };

  const stop = (signal: NodeJS.Signals) => {
    if (running !== undefined) process.kill(-running, "SIGKILL");
    for (const dir of served) rmSync(dir, { recursive: true, force: true });
    rmSync(secrets, { recursive: true, force: true });
    console.log(`\n${signal}: stopped; removed what the bench put into the FTP home and the share`);
    process.exit(130);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);

  const rows: Row[] = [];
  /** Runs one tool, checks the copy it made (`check`: a folder on local disk), and removes the copy when it is right. */
  const measure = async (c: Case, where: string, label: string, ours: boolean, cmd: string, args: readonly string[], check: string, cleanup: () => void, watch?: StdoutWatch): Promise<Row> => {
    spawnSync("sync");
    process.stdout.write(`running ${where}, ${c.title}: ${label}… `);
    const run = await runChild(cmd, args, {
      cwd: repoRoot,
      env: ours ? oursEnv : childEnv,
      timeBin: tools.time,
      ...(watch && { onLine: watch.onLine }),
      onSpawn: (pid) => {
        running = pid;
      },
    });
    const syncStarted = performance.now();
    spawnSync("sync");
    const syncSeconds = (performance.now() - syncStarted) / 1000;
    const problems = run.code === 0 ? checkCopy(check, c) : [];
    const row: Row = { case: c, path: where, label, ours, command: shown(cmd, args), run, syncSeconds, problems };
    rows.push(row);
    console.log(`${(run.seconds + syncSeconds).toFixed(2)} s`);
    if (run.code !== 0) console.log(`  failed (${run.timedOut ? "timed out" : `exit ${run.code ?? run.signal}`}):\n    ${run.tail.trim().split("\n").slice(-12).join("\n    ")}`);
    if (problems.length > 0) console.log(`  the copy does not match the source (${problems.length} problems), e.g.:\n    ${problems.slice(0, 5).join("\n    ")}`);
    if (ours) {
      const retries = (run.events["file:retry"] ?? 0) + (run.events["file:failover"] ?? 0) + (run.events["file:failed"] ?? 0);
      const split = phases(run);
      row.note = [split, retries > 0 ? `${run.events["file:retry"] ?? 0} retries, ${run.events["file:failover"] ?? 0} failovers, ${run.events["file:failed"] ?? 0} failed files` : undefined]
        .filter((s) => s !== undefined)
        .join("; ");
    }
    const watched = watch?.note();
    if (watched !== undefined) row.note = watched;
    if (ok(row)) cleanup();
    return row;
  };
  const localDest = (name: string) => path.join(runsDir, name);
  const removeLocal = (dir: string) => () => rmSync(dir, { recursive: true, force: true });

  try {
    for (const c of [large, small]) {
      if (services.ftp) {
        const ftp = services.ftp;
        const src = servedFolder(ftp.root, `bench-transfer-${c.key}`, 0o755);
        linkCase(c, src.dir);
        const where = "FTP read";
        const dest = localDest(`ftp-ours-${c.key}`);
        await measure(
          c,
          where,
          "update-mirror sync",
          true,
          process.execPath,
          [binPath, "sync", "--source", `ftp://${encodeURIComponent(ftp.user)}@${ftp.host}:${ftp.port}/${src.name}/`, "--dest", dest, "--ftp-password-env", FTP_PASSWORD_ENV, "--json"],
          dest,
          removeLocal(dest),
        );
        if (tools.curl) {
          const base = `ftp://${ftp.host}:${ftp.port}/${src.name}/`;
          // -w prints each transfer's time_pretransfer (login, EPSV, data connection, up to RETR), so stalls show.
          const curlArgs = ["-sS", "--netrc-file", netrc, "-w", "%{time_pretransfer}\\n"];
          if (c.key === "large") {
            const out = localDest(`ftp-curl-${c.key}`);
            mkdirSync(out);
            await measure(c, where, "curl", false, tools.curl, [...curlArgs, "-o", path.join(out, LARGE_NAME), `${base}${LARGE_NAME}`], out, removeLocal(out), curlWatch());
          } else {
            // One curl with URL globbing: every file over one control connection, one after the other (a
            // passive data connection each). That is how a script would fetch a known list of files with
            // curl, and the plain baseline. Our sync runs 4 files at once over a pool of 4 connections, so
            // curl -Z with 4 parallel transfers is measured too: the same parallelism as ours.
            const glob = `${base}f[${"0".repeat(4)}-${String(c.files.size - 1).padStart(4, "0")}].bin`;
            const out = localDest(`ftp-curl-${c.key}`);
            mkdirSync(out);
            await measure(c, where, "curl (glob, 1 connection)", false, tools.curl, [...curlArgs, glob, "-o", path.join(out, "f#1.bin")], out, removeLocal(out), curlWatch());
            const outZ = localDest(`ftp-curl-z-${c.key}`);
            mkdirSync(outZ);
            await measure(c, where, "curl -Z (glob, 4 parallel)", false, tools.curl, [...curlArgs, "-Z", "--parallel-max", "4", glob, "-o", path.join(outZ, "f#1.bin")], outZ, removeLocal(outZ), curlWatch());
          }
        } else console.log(`SKIPPED: FTP read, ${c.title}: curl (not available)`);
        removeServed(src.dir);
      }

      if (services.smb) {
        const smb = services.smb;
        const share = `//${smb.host}/${smb.share}`;
        const smbArgs = [share, "-p", String(smb.port), "-A", smbAuth];
        const src = servedFolder(smb.root, `bench-transfer-${c.key}`, 0o755);
        linkCase(c, src.dir);
        let where = "SMB read";
        const dest = localDest(`smb-ours-${c.key}`);
        await measure(
          c,
          where,
          "update-mirror sync",
          true,
          process.execPath,
          [binPath, "sync", "--source", `smb://${encodeURIComponent(smb.user)}@${smb.host}:${smb.port}/${smb.share}/${src.name}/`, "--dest", dest, "--smb-password-env", SMB_PASSWORD_ENV, "--json"],
          dest,
          removeLocal(dest),
        );
        if (tools.smbclient) {
          const out = localDest(`smb-smbclient-${c.key}`);
          mkdirSync(out);
          await measure(c, where, "smbclient mget", false, tools.smbclient, [...smbArgs, "-c", `prompt OFF; recurse ON; cd "${src.name}"; lcd "${out}"; mget *`], out, removeLocal(out));
        } else console.log(`SKIPPED: ${where}, ${c.title}: smbclient (not available)`);
        removeServed(src.dir);

        // The mirror kept on a share: a local folder tree synced onto it. The Samba user writes there.
        where = "SMB write";
        const mirror = servedFolder(smb.root, `bench-transfer-${c.key}-ours`, 0o777);
        await measure(
          c,
          where,
          "update-mirror sync",
          true,
          process.execPath,
          [binPath, "sync", "--source", c.dir, "--dest", `smb://${encodeURIComponent(smb.user)}@${smb.host}:${smb.port}/${smb.share}/${mirror.name}`, "--smb-password-env", SMB_PASSWORD_ENV, "--json"],
          mirror.dir,
          () => removeServed(mirror.dir),
        );
        if (tools.smbclient) {
          const into = servedFolder(smb.root, `bench-transfer-${c.key}-smbclient`, 0o777);
          await measure(c, where, "smbclient mput", false, tools.smbclient, [...smbArgs, "-c", `prompt OFF; recurse ON; cd "${into.name}"; lcd "${c.dir}"; mput *`], into.dir, () => removeServed(into.dir));
        } else console.log(`SKIPPED: ${where}, ${c.title}: smbclient (not available)`);
      }
    }
  } finally {
    // Whatever the outcome, nothing stays in the FTP home or the share.
    for (const dir of [...served]) removeServed(dir);
    rmSync(secrets, { recursive: true, force: true });
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }

  console.log("");
  printTable(rows);
  console.log("\nours/tool: our seconds over the tool's (below 1 = we are faster)");
  for (const r of rows) if (r.note) console.log(`  ${r.path}, ${r.case.title}, ${r.label}: ${r.note}`);
  console.log("\ncommands (working directory: the repository; passwords come from files or the environment):");
  for (const r of rows) console.log(`  ${r.path}, ${r.case.title}, ${r.label}:\n    ${r.command}`);
  console.log("");

  for (const r of rows) {
    if (r.ours) continue;
    const ours = rows.find((o) => o.ours && o.case === r.case && o.path === r.path);
    const what = `${r.path}, ${r.case.title}`;
    if (!ours || !ok(ours)) console.log(`SKIPPED: ${what}: ours vs ${r.label}: update-mirror failed`);
    else if (!ok(r)) console.log(`SKIPPED: ${what}: ours vs ${r.label}: ${r.label} failed`);
    else {
      const ratio = total(ours) / total(r);
      console.log(`${ratio <= TARGET_RATIO ? "PASS" : "BELOW TARGET"}: ${what}: update-mirror ${total(ours).toFixed(2)} s vs ${r.label} ${total(r).toFixed(2)} s = ${ratio.toFixed(2)}x; target within ${TARGET_RATIO}x of the tool's time`);
    }
  }
  for (const s of services.skips) console.log(`SKIPPED: ${s}`);

  const failed = rows.filter((r) => !ok(r));
  if (failed.length === 0) rmSync(runsDir, { recursive: true, force: true });
  else console.log(`\nFAILED runs: ${failed.map((r) => `${r.path}, ${r.case.title}: ${r.label}`).join("; ")} (local copies kept under ${path.relative(repoRoot, runsDir)})`);
  console.log(`\nbench took ${((performance.now() - benchStarted) / 1000).toFixed(0)} s; one run each, so expect noise of ±10-20% on a shared machine`);
  console.log("(informational: this never fails for being slow; it fails only when a tool run itself fails)");
  if (failed.length > 0) process.exitCode = 1;
}

await main();
