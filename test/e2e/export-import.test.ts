// `export` and `import` through the built CLI: folder media and archives, deltas, refusals, and a medium yanked mid-export.
import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { cp, mkdir, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hasCommand, REPO_ROOT, runCli, scratchDir, writeTree } from "../support/cli.js";

let dir: string;
let cleanup: () => Promise<void>;
let up: string;
let dmz: string;
let inside: string;
let keys: string;

beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("export-import"));
  up = join(dir, "up");
  dmz = join(dir, "dmz");
  inside = join(dir, "inside");
  keys = join(dir, "keys");
  const tree: Record<string, string | Buffer> = { "av/bases/daily.cvd": Buffer.alloc(200_000, 7), "av/bases/main.cvd": "main v1\n", "av/readme.txt": "read me\n" };
  for (let i = 0; i < 20; i++) tree[`av/parts/part-${String(i).padStart(2, "0")}.bin`] = `part ${i} v1\n`;
  await writeTree(up, tree);
  for (const name of ["dmz", "other"]) expect((await runCli(["keygen", "--out", join(keys, name)])).code).toBe(0);
});
afterEach(async () => cleanup());

async function syncDmz(): Promise<void> {
  const r = await runCli(["sync", "--source", up, "--dest", dmz, "--sign-key", join(keys, "dmz.key"), "--max-delete", "100%"]);
  expect(r.code, r.stderr).toBe(0);
}

const manifestBytes = (root: string) => readFile(join(root, ".update-mirror/manifest.json"));
const versionOf = async (root: string) => (JSON.parse((await manifestBytes(root)).toString()) as { version: number }).version;

/** Every payload file of a mirror (not its metadata), for before/after comparisons. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(rel: string): Promise<void> {
    for (const e of await readdir(join(root, rel), { withFileTypes: true }).catch(() => [])) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (p === ".update-mirror/private") continue;
      if (e.isDirectory()) await walk(p);
      else out[p] = (await readFile(join(root, p))).toString("base64");
    }
  }
  await walk("");
  return out;
}

async function changeUpstream(version: number): Promise<void> {
  await writeFile(join(up, "av/bases/main.cvd"), `main v${version}\n`);
  await writeFile(join(up, `av/new-in-v${version}.txt`), `new in v${version}\n`);
  await rm(join(up, "av/readme.txt"), { force: true });
}

describe("folder media", () => {
  it("exports a verifiable mirror, imports it with the DMZ's signature, and re-runs are incremental no-ops", async () => {
    await syncDmz();
    const usb = join(dir, "usb");
    const exported = await runCli(["export", dmz, "--to", usb]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(await manifestBytes(usb)).toEqual(await manifestBytes(dmz));
    expect(await readFile(join(usb, ".update-mirror/README.txt"), "utf8")).toMatch(/update-mirror import .*usb --to/);
    expect((await runCli(["verify", usb, "--pubkey", join(keys, "dmz.pub")])).code).toBe(0);
    if (hasCommand("minisign")) expect(spawnSync("minisign", ["-Vm", join(usb, ".update-mirror/manifest.json"), "-p", join(keys, "dmz.pub")]).status).toBe(0);
    expect(spawnSync("sha256sum", ["-c", "--quiet", ".update-mirror/SHA256SUMS"], { cwd: usb }).status).toBe(0);

    const imported = await runCli(["import", usb, "--to", inside, "--trust", join(keys, "dmz.pub")]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(await manifestBytes(inside)).toEqual(await manifestBytes(dmz));
    expect(await readFile(join(inside, ".update-mirror/manifest.json.minisig"))).toEqual(await readFile(join(dmz, ".update-mirror/manifest.json.minisig")));
    expect((await runCli(["verify", inside, "--pubkey", join(keys, "dmz.pub")])).code).toBe(0);
    const again = await runCli(["import", usb, "--to", inside, "--trust", join(keys, "dmz.pub")]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/up to date at version 1/);

    await changeUpstream(2);
    await syncDmz();
    const second = await runCli(["export", dmz, "--to", usb, "--json"]);
    expect(second.code, second.stderr).toBe(0);
    const plan = second.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.type === "plan:ready");
    expect(plan).toMatchObject({ add: 1, update: 1, remove: 1 });
    await expect(readFile(join(usb, "av/readme.txt"))).rejects.toMatchObject({ code: "ENOENT" });
    expect((await runCli(["import", usb, "--to", inside, "--trust", join(keys, "dmz.pub")])).code).toBe(0);
    expect(await versionOf(inside)).toBe(2);
    expect(await readFile(join(inside, "av/bases/main.cvd"), "utf8")).toBe("main v2\n");
    expect((await runCli(["verify", inside, "--pubkey", join(keys, "dmz.pub")])).code).toBe(0);
  });

  it("refuses another key, an unsigned medium, and an older medium, and changes nothing", async () => {
    await syncDmz();
    const oldUsb = join(dir, "usb-v1");
    expect((await runCli(["export", dmz, "--to", oldUsb])).code).toBe(0);
    await changeUpstream(2);
    await syncDmz();
    const usb = join(dir, "usb");
    expect((await runCli(["export", dmz, "--to", usb])).code).toBe(0);
    expect((await runCli(["import", usb, "--to", inside, "--trust", join(keys, "dmz.pub")])).code).toBe(0);
    const before = await snapshot(inside);

    const wrongKey = await runCli(["import", usb, "--to", inside, "--trust", join(keys, "other.pub")]);
    expect(wrongKey.code).toBe(3);
    const older = await runCli(["import", oldUsb, "--to", inside, "--trust", join(keys, "dmz.pub")]);
    expect(older.code).toBe(4);
    expect(older.stderr).toMatch(/version 1 is older than version 2.*--allow-rollback/);
    const unsigned = join(dir, "unsigned");
    await cp(usb, unsigned, { recursive: true });
    await rm(join(unsigned, ".update-mirror/manifest.json.minisig"));
    const refused = await runCli(["import", unsigned, "--to", inside, "--trust", join(keys, "dmz.pub")]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/not signed/);
    const tampered = join(dir, "tampered");
    await cp(usb, tampered, { recursive: true });
    await writeFile(join(tampered, "av/bases/main.cvd"), "main v2, tampered\n");
    const bad = await runCli(["import", tampered, "--to", join(dir, "fresh"), "--trust", join(keys, "dmz.pub")]);
    expect(bad.code).toBe(3);
    await expect(readFile(join(dir, "fresh", ".update-mirror/manifest.json"))).rejects.toMatchObject({ code: "ENOENT" });
    expect(await snapshot(inside)).toEqual(before);
  });

  it("never follows a link nor blocks on a FIFO that a hostile folder medium puts at a listed path", async () => {
    await syncDmz();
    const usb = join(dir, "usb");
    expect((await runCli(["export", dmz, "--to", usb])).code).toBe(0);
    // The link's target even has the right bytes: a link is refused for what it is, not for its content.
    const elsewhere = join(dir, "elsewhere.cvd");
    await writeFile(elsewhere, "main v1\n");
    await rm(join(usb, "av/bases/main.cvd"));
    await symlink(elsewhere, join(usb, "av/bases/main.cvd"));
    await rm(join(usb, "av/readme.txt"));
    expect(spawnSync("mkfifo", [join(usb, "av/readme.txt")]).status).toBe(0);
    const r = await runCli(["import", usb, "--to", inside, "--trust", join(keys, "dmz.pub")]);
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/av\/bases\/main\.cvd|av\/readme\.txt/);
    await expect(readFile(join(inside, ".update-mirror/manifest.json"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("leaves the previous export importable when a re-export is cut off mid-publish", async () => {
    await syncDmz();
    const usb = join(dir, "usb");
    expect((await runCli(["export", dmz, "--to", usb])).code).toBe(0);
    const v1 = await snapshot(usb);
    for (let i = 0; i < 20; i++) await writeFile(join(up, `av/parts/part-${String(i).padStart(2, "0")}.bin`), `part ${i} v2\n`);
    await writeFile(join(up, "av/zz-late.txt"), "late\n");
    await syncDmz();
    // A folder where the new file must go makes the publish fail after files were placed: as if the medium was pulled.
    await mkdir(join(usb, "av/zz-late.txt"), { recursive: true });
    const cut = await runCli(["export", dmz, "--to", usb]);
    expect(cut.code).not.toBe(0);
    await readFile(join(usb, ".update-mirror/private/journal.json"));
    const placed = Object.keys(v1).filter((p) => p.startsWith("av/parts/")).filter((p) => spawnSync("grep", ["-q", "v2", join(usb, p)]).status === 0);
    expect(placed.length).toBeGreaterThan(0);

    const imported = await runCli(["import", usb, "--to", inside, "--trust", join(keys, "dmz.pub")]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(await versionOf(inside)).toBe(1);
    expect(await readFile(join(inside, placed[0] as string), "utf8")).toMatch(/v1/);
    expect((await runCli(["verify", inside, "--pubkey", join(keys, "dmz.pub")])).code).toBe(0);
  });
});

describe("archives and deltas", () => {
  it("carries a full zip across, then a chain of tar deltas in order, and refuses a delta on the wrong base", async () => {
    await syncDmz();
    const media = join(dir, "media");
    await mkdir(media);
    const full = await runCli(["export", dmz, "--to", join(media, "full.zip")]);
    expect(full.code, full.stderr).toBe(0);
    if (hasCommand("unzip")) expect(spawnSync("unzip", ["-tq", join(media, "full.zip")]).status).toBe(0);
    const trust = ["--trust", join(keys, "dmz.pub")];
    expect((await runCli(["import", join(media, "full.zip"), "--to", inside, ...trust])).code).toBe(0);
    expect(await manifestBytes(inside)).toEqual(await manifestBytes(dmz));
    const behind = join(dir, "behind");
    await cp(inside, behind, { recursive: true });

    await changeUpstream(2);
    await syncDmz();
    const d2 = await runCli(["export", dmz, "--to", join(media, "d2.tar"), "--since", "1"]);
    expect(d2.code, d2.stderr).toBe(0);
    const listed = spawnSync("tar", ["-tf", join(media, "d2.tar")], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    // Metadata first, then only what changed: the new file and the changed one.
    expect(listed.slice(0, 2)).toEqual([".update-mirror/manifest.json", ".update-mirror/manifest.json.minisig"]);
    expect(listed.filter((n) => !n.startsWith(".update-mirror/")).sort()).toEqual(["av/bases/main.cvd", "av/new-in-v2.txt"]);

    await writeFile(join(up, "av/bases/main.cvd"), "main v3\n");
    await syncDmz();
    // The inside mirror's own manifest as the base works as well as a version number.
    const d3 = await runCli(["export", dmz, "--to", join(media, "d3.tar"), "--since", join(dmz, ".update-mirror/private/manifests/2.json"), "--split-size", "64K"]);
    expect(d3.code, d3.stderr).toBe(0);

    // v3's delta onto a mirror still at v1: refused, naming the base it needs, nothing changed.
    const before = await snapshot(behind);
    const wrong = await runCli(["import", join(media, "d3.tar"), "--to", behind, ...trust]);
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toMatch(/delta from version 2 to 3.*at version 1.*Import version 2 first/s);
    expect(await snapshot(behind)).toEqual(before);

    for (const delta of ["d2.tar", "d3.tar"]) {
      const r = await runCli(["import", join(media, delta), "--to", inside, ...trust]);
      expect(r.code, r.stderr).toBe(0);
    }
    expect(await manifestBytes(inside)).toEqual(await manifestBytes(dmz));
    expect(await readFile(join(inside, "av/bases/main.cvd"), "utf8")).toBe("main v3\n");
    expect((await runCli(["verify", inside, "--pubkey", join(keys, "dmz.pub")])).code).toBe(0);
    expect((await runCli(["import", join(media, "d3.tar"), "--to", inside, ...trust])).stdout).toMatch(/up to date at version 3/);
  });

  it("names the version a --since needs when it is no longer kept, and refuses a delta into a folder", async () => {
    await syncDmz();
    const gone = await runCli(["export", dmz, "--to", join(dir, "d.zip"), "--since", "7"]);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/no longer keeps version 7.*manifest\.json/);
    const folder = await runCli(["export", dmz, "--to", join(dir, "usb"), "--since", "1"]);
    expect(folder.code).toBe(2);
    expect(folder.stderr).toMatch(/--since: a delta is written as one archive/);
    const notMirror = await runCli(["export", up, "--to", join(dir, "x.tar")]);
    expect(notMirror.code).toBe(2);
    expect(notMirror.stderr).toMatch(/not a mirror/);
  });
});

/** Starts `update-mirror ARGS --json` and kill -9s it once `afterFiles` files are done; resolves with those files. */
async function killAfter(args: string[], afterFiles: number): Promise<string[]> {
  const child = spawn(process.execPath, [join(REPO_ROOT, "bin/update-mirror.js"), ...args, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  const done: string[] = [];
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      const event = JSON.parse(line) as { type: string; path?: string };
      if (event.type === "file:done" && event.path) done.push(event.path);
      if (done.length === afterFiles) child.kill("SIGKILL");
    });
    child.on("close", () => resolve());
    child.on("error", reject);
  });
  return done;
}

describe("kill -9 mid-export", () => {
  it("leaves no half archive and no half medium; the next run completes and imports", async () => {
    const bulk: Record<string, Buffer> = {};
    for (let i = 0; i < 60; i++) bulk[`bulk/file-${String(i).padStart(2, "0")}.bin`] = Buffer.alloc(512 * 1024, i);
    await writeTree(up, bulk);
    await syncDmz();
    const media = join(dir, "media");
    await mkdir(media);
    const tar = join(media, "full.tar");
    expect((await killAfter(["export", dmz, "--to", tar], 5)).length).toBeGreaterThanOrEqual(5);
    await expect(readFile(tar)).rejects.toMatchObject({ code: "ENOENT" });
    const usb = join(dir, "usb");
    expect((await killAfter(["export", dmz, "--to", usb, "--verbose"], 5)).length).toBeGreaterThanOrEqual(5);
    await expect(readFile(join(usb, ".update-mirror/manifest.json"))).rejects.toMatchObject({ code: "ENOENT" });

    expect((await runCli(["export", dmz, "--to", tar])).code).toBe(0);
    expect(await readdir(media)).toEqual(["full.tar"]);
    expect((await runCli(["export", dmz, "--to", usb])).code).toBe(0);
    expect((await runCli(["verify", usb, "--pubkey", join(keys, "dmz.pub")])).code).toBe(0);
    for (const medium of [tar, usb]) {
      const target = join(dir, `inside-from-${medium === tar ? "tar" : "usb"}`);
      const r = await runCli(["import", medium, "--to", target, "--trust", join(keys, "dmz.pub")]);
      expect(r.code, r.stderr).toBe(0);
      expect(await manifestBytes(target)).toEqual(await manifestBytes(dmz));
    }
  });
});
