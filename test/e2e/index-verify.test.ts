// The built CLI end to end: keygen -> index -> verify, and every kind of damage verify must name.
import { execFile } from "node:child_process";
import { readFile, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/core/canonical-json.js";
import { renderSha256Sums } from "../../src/core/sha256sums.js";
import { runCli, scratchDir, writeTree } from "../support/cli.js";

const exec = promisify(execFile);

const TREE = {
  "kes/win-x64/bases/daily.cvd": Buffer.alloc(70_000, 7),
  "kes/win-x64/bases/main-en.cvd": "main database\n",
  "kes/linux/module.bin": Buffer.alloc(5_000_000, 1),
  "clamav/bytecode.cvd": "bytecode\n",
  "docs/read me #1 (100%).txt": "awkward name\n",
  "ünïcödé/日本語.txt": "non-ascii\n",
  "empty.dat": "",
};

let dir: string;
let cleanup: () => Promise<void>;
let mirror: string;
let keys: string;

beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("e2e"));
  mirror = join(dir, "mirror");
  keys = join(dir, "keys", "mirror");
  await writeTree(mirror, TREE);
});
afterEach(async () => cleanup());

async function indexSigned(): Promise<void> {
  expect((await runCli(["keygen", "--out", keys])).code).toBe(0);
  const r = await runCli(["index", mirror, "--key", `${keys}.key`]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
}

async function verify(...extra: string[]) {
  return runCli(["verify", mirror, "--pubkey", `${keys}.pub`, ...extra]);
}

describe("keygen, index, verify", () => {
  it("indexes, signs and verifies a clean tree", async () => {
    await indexSigned();
    expect((await stat(`${keys}.key`)).mode & 0o777).toBe(0o600);
    const r = await verify();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/7 files, .* hashed: OK/);
    const manifest = JSON.parse(await readFile(join(mirror, ".update-mirror/manifest.json"), "utf8"));
    expect(manifest.files.map((f: { path: string }) => f.path)).toEqual([
      "clamav/bytecode.cvd",
      "docs/read me #1 (100%).txt",
      "empty.dat",
      "kes/linux/module.bin",
      "kes/win-x64/bases/daily.cvd",
      "kes/win-x64/bases/main-en.cvd",
      "ünïcödé/日本語.txt",
    ]);
  });

  it("agrees with sha256sum -c run from the mirror root", async () => {
    await indexSigned();
    const { stdout } = await exec("sha256sum", ["-c", ".update-mirror/SHA256SUMS"], { cwd: mirror });
    expect(stdout.trim().split("\n")).toHaveLength(7);
    expect(stdout).not.toMatch(/FAILED/);
  });

  it("reports a flipped byte with the file's path", async () => {
    await indexSigned();
    const file = join(mirror, "kes/win-x64/bases/daily.cvd");
    const bytes = await readFile(file);
    bytes[1234] = (bytes[1234] ?? 0) ^ 0x01;
    await writeFile(file, bytes);
    const r = await verify();
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^CORRUPT +kes\/win-x64\/bases\/daily\.cvd: SHA-256 is [0-9a-f]{64}, manifest says/m);
    expect(r.stdout).toMatch(/1 problem$/m);
  });

  it("reports a truncated file", async () => {
    await indexSigned();
    await truncate(join(mirror, "kes/linux/module.bin"), 4_000_000);
    const r = await verify();
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^CORRUPT +kes\/linux\/module\.bin: size is 4000000 bytes, manifest says 5000000$/m);
  });

  it("reports a missing file", async () => {
    await indexSigned();
    await rm(join(mirror, "docs/read me #1 (100%).txt"));
    const r = await verify();
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^MISSING +docs\/read me #1 \(100%\)\.txt$/m);
  });

  it("reports an extra file", async () => {
    await indexSigned();
    await writeFile(join(mirror, "kes/stray.tmp"), "x");
    const r = await verify();
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^UNLISTED +kes\/stray\.tmp$/m);
  });

  it("fails a manifest altered after signing, even with SHA256SUMS rewritten to match", async () => {
    await indexSigned();
    const file = join(mirror, "kes/win-x64/bases/main-en.cvd");
    await writeFile(file, "evil database\n");
    const manifestPath = join(mirror, ".update-mirror/manifest.json");
    const manifest = JSON.parse(await readFile(manifestPath, "utf8"));
    const entry = manifest.files.find((f: { path: string }) => f.path === "kes/win-x64/bases/main-en.cvd");
    const { stdout } = await exec("sha256sum", [file]);
    entry.sha256 = stdout.slice(0, 64);
    await writeFile(manifestPath, `${canonicalJson(manifest)}\n`);
    await writeFile(join(mirror, ".update-mirror/SHA256SUMS"), renderSha256Sums(manifest.files));
    const r = await verify();
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^SIGNATURE invalid: .*manifest\.json\.minisig/m);
    expect(r.stdout).not.toMatch(/CORRUPT/);
  });

  it("fails with another key, and without a signature", async () => {
    await indexSigned();
    const other = join(dir, "keys", "other");
    await runCli(["keygen", "--out", other]);
    const r = await runCli(["verify", mirror, "--pubkey", `${other}.pub`]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/SIGNATURE invalid: .*key id/i);
    await rm(join(mirror, ".update-mirror/manifest.json.minisig"));
    const r2 = await verify();
    expect(r2.code).toBe(3);
    expect(r2.stdout).toMatch(/SIGNATURE missing/);
  });

  it("gives a machine-readable report with --json", async () => {
    await indexSigned();
    await rm(join(mirror, "empty.dat"));
    const r = await verify("--json");
    expect(r.code).toBe(3);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ ok: false, version: 1, missing: ["empty.dat"], corrupt: [], unlisted: [], signature: { status: "valid" } });
  });

  it("re-indexes an unchanged tree to identical bytes except created and version", async () => {
    await indexSigned();
    const first = JSON.parse(await readFile(join(mirror, ".update-mirror/manifest.json"), "utf8"));
    const sums1 = await readFile(join(mirror, ".update-mirror/SHA256SUMS"), "utf8");
    const r = await runCli(["index", mirror, "--key", `${keys}.key`, "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ version: 2, previousVersion: 1, files: 7, signed: true });
    const second = JSON.parse(await readFile(join(mirror, ".update-mirror/manifest.json"), "utf8"));
    expect(second.version).toBe(2);
    expect({ ...second, created: "", version: 0 }).toEqual({ ...first, created: "", version: 0 });
    expect(await readFile(join(mirror, ".update-mirror/SHA256SUMS"), "utf8")).toBe(sums1);
    expect((await verify()).code).toBe(0);
  });

  it("drops a stale signature when re-indexed without a key", async () => {
    await indexSigned();
    const r = await runCli(["index", mirror]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/unsigned/);
    await expect(stat(join(mirror, ".update-mirror/manifest.json.minisig"))).rejects.toThrow();
    expect((await runCli(["verify", mirror])).code).toBe(0);
  });

  it("tags files from a config file's globs", async () => {
    const config = join(dir, "config.json");
    await writeFile(config, JSON.stringify({ tags: [{ match: "kes/**", set: { product: "kes" } }, { match: "kes/win-x64/**", set: { platform: "win-x64" } }] }));
    expect((await runCli(["index", mirror, "--config", config])).code).toBe(0);
    const manifest = JSON.parse(await readFile(join(mirror, ".update-mirror/manifest.json"), "utf8"));
    const tags = Object.fromEntries(manifest.files.map((f: { path: string; tags?: unknown }) => [f.path, f.tags]));
    expect(tags["kes/win-x64/bases/daily.cvd"]).toEqual({ product: "kes", platform: "win-x64" });
    expect(tags["kes/linux/module.bin"]).toEqual({ product: "kes" });
    expect(tags["empty.dat"]).toBeUndefined();
  });

  it("writes an expiry when asked", async () => {
    expect((await runCli(["index", mirror, "--expires", "30d"])).code).toBe(0);
    const manifest = JSON.parse(await readFile(join(mirror, ".update-mirror/manifest.json"), "utf8"));
    const days = (Date.parse(manifest.expires) - Date.parse(manifest.created)) / 86_400_000;
    expect(days).toBe(30);
  });
});

describe("index refuses what a mirror cannot carry", () => {
  it("lists every symlink and unsafe name, and writes nothing", async () => {
    await symlink("kes", join(mirror, "link-to-kes"));
    await writeTree(mirror, { "kes/CON": "x", "kes/trailing.": "x", "kes/Bases/x": "x", "kes/bases/x": "y", "what?.txt": "x" });
    const r = await runCli(["index", mirror]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/link-to-kes: symbolic link/);
    expect(r.stderr).toMatch(/kes\/CON: .*reserved Windows device name/);
    expect(r.stderr).toMatch(/kes\/trailing\.: .*dot or space/);
    expect(r.stderr).toMatch(/what\?\.txt: .*Windows cannot store/);
    expect(r.stderr).toMatch(/differs only in case/);
    await expect(stat(join(mirror, ".update-mirror"))).rejects.toThrow();
  });
});

describe("keys and secrets", () => {
  it("encrypts the secret key with a passphrase and never prints it", async () => {
    const env = { ...process.env, UM_PASS: "correct horse battery staple" };
    const logFile = join(dir, "log.jsonl");
    expect((await runCli(["keygen", "--out", keys, "--passphrase-env", "UM_PASS"], { env })).code).toBe(0);
    expect(await readFile(`${keys}.key`, "utf8")).toMatch(/ENCRYPTED PRIVATE KEY/);

    const noPass = await runCli(["index", mirror, "--key", `${keys}.key`]);
    expect(noPass.code).toBe(2);
    expect(noPass.stderr).toMatch(/mirror\.key.*encrypted/);

    const wrong = await runCli(["index", mirror, "--key", `${keys}.key`, "--passphrase-env", "UM_PASS"], { env: { ...env, UM_PASS: "wrong" } });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/mirror\.key/);

    const ok = await runCli(["index", mirror, "--key", `${keys}.key`, "--passphrase-env", "UM_PASS", "--log-level", "debug", "--log-file", logFile], { env });
    expect(ok.code).toBe(0);
    const everything = [noPass, wrong, ok].map((r) => r.stdout + r.stderr).join("") + (await readFile(logFile, "utf8"));
    expect(everything).not.toContain("correct horse");
    expect(everything).not.toContain("wrong\n");
    expect((await verify()).code).toBe(0);
  });

  it("refuses to overwrite keys without --force", async () => {
    expect((await runCli(["keygen", "--out", keys])).code).toBe(0);
    const again = await runCli(["keygen", "--out", keys]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/mirror\.(key|pub)/);
    expect((await runCli(["keygen", "--out", keys, "--force"])).code).toBe(0);
  });
});

describe("usage errors", () => {
  it.each([
    [["index"], /Not enough non-option arguments/],
    [["verify", "/definitely/not/here"], /\/definitely\/not\/here.*not found/],
    [["index", "/tmp", "--expires", "soon"], /--expires: "soon"/],
    [["nonsense"], /Unknown argument: nonsense/],
  ])("%j exits 2 with a clear message", async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it.each([["keygen"], ["index"], ["verify"]])("%s --help shows examples", async (command) => {
    const r = await runCli([command, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Examples:/);
  });
});
