// `sync` and `rollback` through the built CLI: folder upstreams, the lock, exit codes, dry run, generations.
import { spawnSync } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, scratchDir, writeTree } from "../support/cli.js";

let dir: string;
let cleanup: () => Promise<void>;
let up: string;
let mirror: string;

beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("sync-cli"));
  up = join(dir, "up");
  mirror = join(dir, "mirror");
  await writeTree(up, { "a/one.bin": Buffer.alloc(10_000, 1), "a/two.bin": "two\n", "b/three.txt": "three\n", "four.dat": "4" });
});
afterEach(async () => cleanup());

async function manifestOf(root: string) {
  return JSON.parse(await readFile(join(root, ".update-mirror/manifest.json"), "utf8")) as { version: number; files: { path: string }[]; origin: { upstream?: string } };
}

describe("sync from a folder", () => {
  it("copies, then applies a delta, and the mirror always verifies", async () => {
    const first = await runCli(["sync", "--source", up, "--dest", mirror]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/published version 1 \(was none\).*4 added/);
    expect((await runCli(["verify", mirror])).code).toBe(0);

    await writeFile(join(up, "a/two.bin"), "two, changed\n");
    await rm(join(up, "four.dat"));
    await writeTree(up, { "c/five.txt": "five\n" });
    const second = await runCli(["sync", "--source", up, "--dest", mirror, "--json"]);
    expect(second.code).toBe(0);
    const done = second.stdout.trim().split("\n").map((l) => JSON.parse(l)).find((e) => e.type === "run:done");
    expect(done.summary).toMatchObject({ result: "updated", version: 2, added: 1, updated: 1, removed: 1 });
    expect((await manifestOf(mirror)).files.map((f) => f.path)).toEqual(["a/one.bin", "a/two.bin", "b/three.txt", "c/five.txt"]);
    expect((await runCli(["verify", mirror])).code).toBe(0);

    const third = await runCli(["sync", "--source", up, "--dest", mirror]);
    expect(third.stdout).toMatch(/up to date at version 2/);
  });

  it("prints the plan with --dry-run and changes nothing", async () => {
    const r = await runCli(["sync", "--source", up, "--dest", mirror, "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}add +a\/one\.bin \(10000 bytes\)$/m);
    expect(r.stdout).toMatch(/up to 10\.0 kB to fetch/);
    await expect(readFile(join(mirror, ".update-mirror/manifest.json"))).rejects.toThrow();
  });

  it("refuses an upstream that emptied, with exit code 4, and deletes nothing", async () => {
    expect((await runCli(["sync", "--source", up, "--dest", mirror])).code).toBe(0);
    await rm(up, { recursive: true });
    await mkdir(up);
    const r = await runCli(["sync", "--source", up, "--dest", mirror]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/is empty: the plan removes 4 of 4 files/);
    expect((await manifestOf(mirror)).files).toHaveLength(4);
    expect((await runCli(["verify", mirror])).code).toBe(0);
  });

  it("fails over to the next source when the first is missing, and exits 7 when none works", async () => {
    const r = await runCli(["sync", "--source", join(dir, "nowhere"), "--source", up, "--dest", mirror]);
    expect(r.code).toBe(0);
    expect((await manifestOf(mirror)).origin.upstream).toBe(up);
    const none = await runCli(["sync", "--source", join(dir, "nowhere"), "--source", "http://127.0.0.1:9/", "--dest", mirror, "--retries", "0", "--connect-timeout", "2s"]);
    expect(none.code).toBe(7);
    expect(none.stderr).toMatch(/no usable source/);
    expect(none.stderr).toMatch(/127\.0\.0\.1:9/);
  });

  it("with --trust, refuses a source that holds no manifest at all (dropping the manifest must not get around the signature)", async () => {
    expect((await runCli(["keygen", "--out", join(dir, "vendor")])).code).toBe(0);
    const r = await runCli(["sync", "--source", up, "--dest", mirror, "--trust", join(dir, "vendor.pub")]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/holds no manifest, and --trust takes only a signed one/);
    await expect(readFile(join(mirror, "four.dat"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("names a bad flag or setting and exits 2", async () => {
    for (const [args, message] of [
      [["sync", "--dest", mirror], /--source/],
      [["sync", "--source", up], /--dest/],
      [["sync", "--source", up, "--dest", mirror, "--select", "colour=red"], /--select "colour=red"/],
      [["sync", "--source", up, "--dest", mirror, "--max-delete", "lots"], /--max-delete/],
      [["sync", "--source", "sftp://x/", "--dest", mirror], /sftp:\/\/ sources are not supported yet/],
      [["sync", "--source", up, "--dest", mirror, "--concurrency", "0"], /--concurrency/],
      [["sync", "--source", up, "--dest", mirror, "--bwlimit", "fast"], /--bwlimit: "fast"/],
      [["sync", "--source", "https://user:s3cr3t@example.invalid/", "--dest", mirror], /source 1: put no password in a source URL/],
    ] as const) {
      const r = await runCli([...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain("s3cr3t");
    }
  });
});

describe("sync from a config file", () => {
  it("takes sources, dest and selection from the file, and flags override it", async () => {
    const config = join(dir, "config.json");
    await writeFile(config, JSON.stringify({ sync: { sources: [join(dir, "nowhere"), up], dest: join(dir, "unused"), exclude: ["b/**"] } }));
    const r = await runCli(["sync", "--config", config, "--dest", mirror]);
    expect(r.code, r.stderr).toBe(0);
    expect((await manifestOf(mirror)).files.map((f) => f.path)).toEqual(["a/one.bin", "a/two.bin", "four.dat"]);
    await expect(readFile(join(dir, "unused", ".update-mirror/manifest.json"))).rejects.toThrow();
  });

  it("names the dot.path of a bad setting", async () => {
    const config = join(dir, "config.json");
    await writeFile(config, JSON.stringify({ sync: { concurrency: 0, select: { colour: ["red"] } }, network: { proxy: { url: "http://u:p@proxy:3128" } } }));
    const r = await runCli(["sync", "--config", config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/sync\.concurrency: /);
    expect(r.stderr).toMatch(/sync\.select/);
    expect(r.stderr).toMatch(/network\.proxy\.url: must be http:\/\/host:port without credentials/);
  });
});

describe("the mirror lock", () => {
  it("makes a second writer exit 6 naming the holder, and takes over a dead holder's lock", async () => {
    expect((await runCli(["sync", "--source", up, "--dest", mirror])).code).toBe(0);
    const lock = join(mirror, ".update-mirror/private/lock");
    await writeFile(lock, JSON.stringify({ host: hostname(), pid: process.pid, started: "2026-01-01T00:00:00.000Z", command: "sync" }));
    const held = await runCli(["sync", "--source", up, "--dest", mirror]);
    expect(held.code).toBe(6);
    expect(held.stderr).toContain(`PID ${process.pid} on ${hostname()}`);
    expect(held.stderr).toContain("since 2026-01-01T00:00:00.000Z");

    const dead = spawnSync("true").pid as number;
    await writeFile(lock, JSON.stringify({ host: hostname(), pid: dead, started: "2026-01-01T00:00:00.000Z", command: "sync" }));
    const taken = await runCli(["sync", "--source", up, "--dest", mirror]);
    expect(taken.code).toBe(0);
    await expect(readFile(lock)).rejects.toThrow();
  });
});

describe("rollback", () => {
  it("returns to the previous generation under a new version, and lists generations", async () => {
    expect((await runCli(["sync", "--source", up, "--dest", mirror])).code).toBe(0);
    await writeFile(join(up, "b/three.txt"), "three, broken\n");
    await rm(join(up, "a/one.bin"));
    expect((await runCli(["sync", "--source", up, "--dest", mirror])).code).toBe(0);
    const list = await runCli(["rollback", "--dest", mirror, "--list"]);
    expect(list.stdout).toMatch(/^version 1 /m);
    const r = await runCli(["rollback", "--dest", mirror]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/published version 3 \(was 2\) from generation 1/);
    expect(await readFile(join(mirror, "b/three.txt"), "utf8")).toBe("three\n");
    expect((await readFile(join(mirror, "a/one.bin"))).length).toBe(10_000);
    expect((await manifestOf(mirror)).version).toBe(3);
    expect((await runCli(["verify", mirror])).code).toBe(0);
  });

  it("refuses to leave a signed mirror unsigned", async () => {
    await runCli(["keygen", "--out", join(dir, "k")]);
    expect((await runCli(["sync", "--source", up, "--dest", mirror, "--sign-key", join(dir, "k.key")])).code).toBe(0);
    await writeFile(join(up, "four.dat"), "5");
    expect((await runCli(["sync", "--source", up, "--dest", mirror, "--sign-key", join(dir, "k.key")])).code).toBe(0);
    const r = await runCli(["rollback", "--dest", mirror]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/signed: give --sign-key/);
    expect((await runCli(["rollback", "--dest", mirror, "--sign-key", join(dir, "k.key")])).code).toBe(0);
    expect((await runCli(["verify", mirror, "--pubkey", join(dir, "k.pub")])).code).toBe(0);
  });
});
