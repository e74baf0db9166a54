// Real clients no one here wrote (wget -m, rclone's http backend, lftp mirror) crawl `serve`'s listings; each copy passes `sha256sum -c` and holds nothing from .update-mirror/private/.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Manifest } from "../../src/core/manifest.js";
import { hasCommand, runCli, scratchDir } from "../support/cli.js";
import { makeUpstream } from "../servers/vendor-server.js";
import { http, type InProcessServer, serveInProcess } from "./serve-harness.js";

const hasSha256sum = hasCommand("sha256sum");
if (!hasSha256sum) console.warn("skipping the serve interop tests: sha256sum is not installed (apt-get install coreutils)");
const clients = { wget: hasCommand("wget"), rclone: hasCommand("rclone"), lftp: hasCommand("lftp") };
for (const [name, present] of Object.entries(clients)) {
  if (!present) console.warn(`skipping the ${name} interop test of serve: ${name} is not installed (apt-get install ${name}; .ci/run installs it)`);
}

const NON_ASCII = "ünïcödé/日本語 ñ.txt".normalize("NFC");
const TREE: Record<string, Buffer> = {
  "bases/daily.cvd": randomBytes(300 * 1024 + 7),
  "bases/nested/deeper/leaf.bin": randomBytes(70 * 1024),
  "docs/read me (1).txt": Buffer.from("a name with spaces\n"),
  [NON_ASCII]: Buffer.from("non-ascii name\n"),
  "top.txt": Buffer.from("top level\n"),
  "empty.dat": Buffer.alloc(0),
};

// Proxies are for the internet (CI exports one); loopback requests must not go through it.
const PROXY_VARS = new Set(["http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"]);

let scratch: { dir: string; cleanup: () => Promise<void> };
let mirror: string;
let srv: InProcessServer;
let manifest: Manifest;
let sums: Buffer;
let clientEnv: NodeJS.ProcessEnv;

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: clientEnv, timeout: 90_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Regular files below `root`, relative, with "/" separators. */
async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out.push(relative(root, join(entry.parentPath, entry.name)).split("\\").join("/"));
  }
  return out.sort();
}

/** The copy holds exactly the listed files (plus `extra` names such as wget's saved listings), nothing of .update-mirror/, and passes sha256sum -c. */
async function checkCopy(copy: string, isExtra: (path: string) => boolean = () => false): Promise<void> {
  expect(existsSync(join(copy, ".update-mirror")), "the client created .update-mirror/").toBe(false);
  const got = await filesUnder(copy);
  expect(got.filter((p) => p.startsWith(".update-mirror"))).toEqual([]);
  expect(got.filter((p) => !isExtra(p))).toEqual(manifest.files.map((f) => f.path).sort());
  // The sums come from the server, as a user would fetch them; the client never saw .update-mirror/.
  await mkdir(join(copy, ".update-mirror"));
  await writeFile(join(copy, ".update-mirror", "SHA256SUMS"), sums);
  const check = await run("sha256sum", ["--strict", "-c", ".update-mirror/SHA256SUMS"], copy);
  expect(check.stderr, check.stdout).toBe("");
  expect(check.code, check.stdout).toBe(0);
  expect(check.stdout.split("\n").filter((l) => l.endsWith(": OK")).length).toBe(manifest.files.length);
}

/** No request reached anything private, and none was answered with a private byte. */
function checkNothingPrivateServed(): void {
  for (const record of srv.access) {
    if (/private/i.test(decodeURIComponent(record.path))) expect(record.status, record.path).toBe(404);
  }
}

beforeAll(async () => {
  scratch = await scratchDir("serve-interop");
  clientEnv = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !PROXY_VARS.has(k.toLowerCase()))), HOME: scratch.dir, LC_ALL: "C.UTF-8" };
  const up = join(scratch.dir, "up");
  mirror = join(scratch.dir, "mirror");
  // Two real syncs, so the mirror has private state and a retained object (the replaced daily.cvd).
  await makeUpstream(up, { ...TREE, "bases/daily.cvd": randomBytes(100 * 1024) });
  for (let i = 0; i < 2; i++) {
    if (i === 1) await makeUpstream(up, TREE);
    const r = await runCli(["sync", "--source", up, "--dest", mirror]);
    if (r.code !== 0) throw new Error(`sync failed (${r.code}): ${r.stderr}`);
  }
  expect((await readdir(join(mirror, ".update-mirror", "private", "objects"))).length).toBeGreaterThan(0);
  srv = await serveInProcess(mirror);
  manifest = JSON.parse((await http(`${srv.url}.update-mirror/manifest.json`)).body.toString("utf8")) as Manifest;
  expect(manifest.files.map((f) => f.path).sort()).toEqual(Object.keys(TREE).sort());
  const got = await http(`${srv.url}.update-mirror/SHA256SUMS`);
  expect(got.status).toBe(200);
  sums = got.body;
}, 120_000);
afterAll(async () => {
  await srv?.close();
  await scratch?.cleanup();
});

describe.skipIf(!hasSha256sum)("real clients mirror `serve` byte for byte", () => {
  it.skipIf(!clients.wget)("wget -m -np -nH crawls the HTML listings", async () => {
    const copy = join(scratch.dir, "wget");
    await mkdir(copy);
    const r = await run("wget", ["-m", "-np", "-nH", "-e", "robots=off", "--restrict-file-names=nocontrol", "-nv", srv.url], copy);
    expect(r.code, r.stderr).toBe(0);
    await checkCopy(copy, (p) => p === "index.html" || p.endsWith("/index.html"));
    checkNothingPrivateServed();
  }, 120_000);

  it.skipIf(!clients.rclone)("rclone copy --http-url URL :http: DEST", async () => {
    const copy = join(scratch.dir, "rclone");
    const r = await run("rclone", ["copy", "--config", join(scratch.dir, "rclone.conf"), "--http-url", srv.url, ":http:", copy], scratch.dir);
    expect(r.code, r.stderr).toBe(0);
    await checkCopy(copy);
    checkNothingPrivateServed();
  }, 120_000);

  it.skipIf(!clients.lftp)('lftp -c "mirror URL DEST"', async () => {
    const copy = join(scratch.dir, "lftp");
    const r = await run("lftp", ["-c", `set cmd:at-exit-bg ""; set net:max-retries 2; mirror ${srv.url} ${copy}`], scratch.dir);
    expect(r.code, r.stderr).toBe(0);
    await checkCopy(copy);
    checkNothingPrivateServed();
  }, 120_000);
});
