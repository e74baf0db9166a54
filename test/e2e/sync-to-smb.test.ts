// `sync --dest smb://...` through the built CLI into the real Samba of .ci/samba.sh: checked independently with smbclient, generations and rollback, the lock, kill -9 then resume.
import { execFile } from "node:child_process";
import { chmod, mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { hasCommand, jsonEvents, runCli, scratchDir } from "../support/cli.js";
import { MODES, prng, runAndKill } from "../support/kill-points.js";
import { payloadTree, whichTree } from "../support/payload-tree.js";
import { makeKeyPair, makeUpstream, startVendorServer, type VendorServer } from "../servers/vendor-server.js";
import { SMB_SKIP_REASON, smbFolder, smbService, smbUrl } from "../servers/smb-service.js";

const run = promisify(execFile);
const service = smbService();
if (service === undefined) console.warn(`skipping sync-into-SMB tests: ${SMB_SKIP_REASON}`);
const SMBCLIENT_SKIP = "smbclient is not installed (.ci/services.sh installs it)";
if (service !== undefined && !hasCommand("smbclient")) console.warn(`skipping the smbclient cross-checks: ${SMBCLIENT_SKIP}`);

interface Event {
  type: string;
  summary?: { result: string; added: number; updated: number; removed: number };
}
const events = (stdout: string) => jsonEvents<Event>(stdout);

const BIG = 64 * 1024;
const pad = (i: number) => String(i).padStart(2, "0");
const big = (path: string, generation: string) => Buffer.concat([Buffer.from(`${path} ${generation}\n`), Buffer.alloc(BIG, path.length + generation.length)]);

function treeA(): Record<string, Buffer> {
  const tree: Record<string, Buffer> = { "dir with space/ünïcödé #1.txt": Buffer.from("awkward\n"), "empty.dat": Buffer.alloc(0) };
  for (let i = 0; i < 16; i++) tree[`db/big-${pad(i)}.bin`] = big(`db/big-${pad(i)}.bin`, "A");
  for (let i = 0; i < 60; i++) tree[`small/s-${pad(i)}.txt`] = Buffer.from(`small ${i} A\n`);
  return tree;
}

/** B over A: 8 big files change, 3 are added, 2 big and 10 small ones go, and one file's content moves to a new name. */
function changeToB(): { tree: Record<string, Buffer>; remove: string[] } {
  const tree: Record<string, Buffer> = {};
  for (let i = 0; i < 8; i++) tree[`db/big-${pad(i)}.bin`] = big(`db/big-${pad(i)}.bin`, "B");
  for (let i = 0; i < 3; i++) tree[`db/new/added-${i}.bin`] = big(`db/new/added-${i}.bin`, "B");
  tree["moved/copy-of-s-00.txt"] = Buffer.from("small 0 A\n");
  const remove = ["db/big-14.bin", "db/big-15.bin"];
  for (let i = 50; i < 60; i++) remove.push(`small/s-${pad(i)}.txt`);
  return { tree, remove };
}

describe.skipIf(service === undefined)("sync into an SMB share (Samba)", () => {
  const smb = service as NonNullable<typeof service>;
  const env = () => ({ ...process.env, UM_TEST_SMB_PASS: smb.password });
  const auth = () => ["--smb-password-env", "UM_TEST_SMB_PASS"];
  let dir: string;
  let cleanup: () => Promise<void>;
  let server: VendorServer | undefined;
  const folders: { remove: () => Promise<void> }[] = [];

  beforeAll(async () => {
    ({ dir, cleanup } = await scratchDir("sync-to-smb"));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  afterAll(async () => {
    for (const f of folders) await f.remove();
    await cleanup?.();
  });

  /** A fresh, empty folder on the share for one mirror: its URL and its folder on the server's disk. */
  async function shareFolder(prefix: string): Promise<{ url: string; local: string; name: string }> {
    const folder = await smbFolder(smb, prefix);
    folders.push(folder);
    // The server writes as the share's user, not as the test's.
    await chmod(folder.dir, 0o777);
    return { url: smbUrl(smb, folder.name), local: folder.dir, name: folder.name };
  }

  /** Downloads the share folder with smbclient (not our client), so the check does not trust the code under test. */
  async function viaSmbclient(name: string, into: string): Promise<string> {
    await mkdir(into, { recursive: true });
    const authFile = join(dir, "smbclient.auth");
    await writeFile(authFile, `username = ${smb.user}\npassword = ${smb.password}\n`, { mode: 0o600 });
    const share = smb.url.pathname.split("/").filter((s) => s !== "")[0] as string;
    await run("smbclient", [`//${smb.url.hostname}/${share}`, "-p", smb.url.port, "-A", authFile, "-c", `prompt OFF; recurse ON; cd "${name}"; lcd "${into}"; mget *`], { maxBuffer: 16 * 1024 * 1024 });
    return into;
  }

  it("publishes a mirror on the share that smbclient reads back byte for byte and that verifies; a re-run changes nothing", async () => {
    const up = join(dir, "up1");
    await makeUpstream(up, treeA());
    server = await startVendorServer(up);
    const dest = await shareFolder("store-a");
    // The password by reference from the config file this time (network.smb.passwordEnv).
    const config = join(dir, "smb.config.json");
    await writeFile(config, JSON.stringify({ network: { smb: { passwordEnv: "UM_TEST_SMB_PASS" } } }));
    const first = await runCli(["sync", "--config", config, "--source", server.url, "--dest", dest.url, "--json"], { env: env() });
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(events(first.stdout).find((e) => e.type === "run:done")?.summary).toMatchObject({ result: "updated", added: Object.keys(treeA()).length });

    if (hasCommand("smbclient")) {
      const copy = await viaSmbclient(dest.name, join(dir, "copy-a"));
      expect(await payloadTree(copy)).toEqual(await payloadTree(up));
      const verified = await runCli(["verify", copy]);
      expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    } else console.warn(`not cross-checked with smbclient: ${SMBCLIENT_SKIP}`);
    // No lock, journal or temp file is left behind.
    const leftovers = async () => (await readdir(join(dest.local, ".update-mirror", "private"))).filter((n) => n !== "state.json" && n !== "history.jsonl" && n !== "objects" && n !== "manifests" && n !== "tmp");
    expect(await leftovers()).toEqual([]);
    expect(await readdir(join(dest.local, ".update-mirror", "private", "tmp"))).toEqual([]);

    const again = await runCli(["sync", "--source", server.url, "--dest", dest.url, "--json", ...auth()], { env: env() });
    expect(again.code, again.stderr).toBe(0);
    expect(events(again.stdout).find((e) => e.type === "run:done")?.summary?.result).toBe("unchanged");
  }, 120_000);

  it("updates in place keeping the previous generation, and rolls back to the exact previous bytes", async () => {
    const up = join(dir, "up2");
    await makeUpstream(up, treeA());
    const setA = await payloadTree(up);
    server = await startVendorServer(up);
    const dest = await shareFolder("store-b");
    expect((await runCli(["sync", "--source", server.url, "--dest", dest.url, ...auth()], { env: env() })).code).toBe(0);
    const b = changeToB();
    await makeUpstream(up, b.tree, { remove: b.remove });
    const setB = await payloadTree(up);
    const second = await runCli(["sync", "--source", server.url, "--dest", dest.url, "--json", ...auth()], { env: env() });
    expect(second.code, second.stderr).toBe(0);
    expect(events(second.stdout).find((e) => e.type === "run:done")?.summary).toMatchObject({ result: "updated", added: 4, updated: 8, removed: 12 });
    expect(await payloadTree(dest.local)).toEqual(setB);
    expect((await runCli(["verify", dest.local])).code).toBe(0);

    const listed = await runCli(["rollback", "--dest", dest.url, "--list", "--json", ...auth()], { env: env() });
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { version: number }[]).map((g) => g.version)).toEqual([1]);
    // Version 0.1 kept every object directly in objects/: the store moves them into their shard folders.
    const objects = join(dest.local, ".update-mirror", "private", "objects");
    let flattened = 0;
    for (const shard of await readdir(objects)) {
      for (const name of await readdir(join(objects, shard))) {
        await rename(join(objects, shard, name), join(objects, name));
        flattened++;
      }
    }
    expect(flattened).toBeGreaterThan(0);
    const back = await runCli(["rollback", "--dest", dest.url, ...auth()], { env: env() });
    expect(back.code, back.stderr).toBe(0);
    expect(await payloadTree(dest.local)).toEqual(setA);
    expect((await readdir(objects)).filter((name) => !/^[0-9a-f]{2}$/.test(name))).toEqual([]);
    const verified = await runCli(["verify", dest.local]);
    expect(verified.code, verified.stdout).toBe(0);
    expect(verified.stdout).toMatch(/version 3/);
  }, 120_000);

  it("an endpoint pulls the signed mirror straight from the share (pull --source smb://), and follows its next version", async () => {
    await makeKeyPair(join(dir, "dmz"));
    const up = join(dir, "up-pull");
    await makeUpstream(up, treeA());
    server = await startVendorServer(up);
    const dest = await shareFolder("store-pull");
    const sign = ["--sign-key", join(dir, "dmz.key")];
    expect((await runCli(["sync", "--source", server.url, "--dest", dest.url, ...sign, ...auth()], { env: env() })).code).toBe(0);
    const to = join(dir, "endpoint-pull", "bases");
    await mkdir(join(dir, "endpoint-pull"));
    const pull = () => runCli(["pull", "--source", dest.url, "--to", to, "--trust", join(dir, "dmz.pub"), ...auth()], { env: env() });
    const first = await pull();
    expect(first.code, first.stderr).toBe(0);
    expect(await payloadTree(to)).toEqual(await payloadTree(up));
    const b = changeToB();
    await makeUpstream(up, b.tree, { remove: b.remove });
    expect((await runCli(["sync", "--source", server.url, "--dest", dest.url, ...sign, ...auth()], { env: env() })).code).toBe(0);
    const second = await pull();
    expect(second.code, second.stderr).toBe(0);
    expect(await payloadTree(to)).toEqual(await payloadTree(up));
  }, 120_000);

  it("refuses a second writer, naming the holder, and takes over a lock left by a dead process", async () => {
    const up = join(dir, "up3");
    await makeUpstream(up, { "a.txt": "a\n" });
    server = await startVendorServer(up);
    const dest = await shareFolder("store-lock");
    const lock = join(dest.local, ".update-mirror", "private", "lock");
    await mkdir(join(dest.local, ".update-mirror", "private"), { recursive: true, mode: 0o777 });
    await chmod(join(dest.local, ".update-mirror"), 0o777);
    await chmod(join(dest.local, ".update-mirror", "private"), 0o777);
    await writeFile(lock, `${JSON.stringify({ host: "dmz-other-host", pid: 4242, started: "2026-11-28T01:02:03.000Z", command: "sync" })}\n`);
    const locked = await runCli(["sync", "--source", server.url, "--dest", dest.url, ...auth()], { env: env() });
    expect(locked.code).toBe(EXIT.locked);
    expect(locked.stderr).toMatch(/locked by PID 4242 on dmz-other-host, running "sync" since 2026-11-28T01:02:03.000Z/);
    expect(locked.stderr).not.toContain(smb.password);

    // A dead process on this host: taken over.
    const { hostname } = await import("node:os");
    const dead = (await run(process.execPath, ["-e", "console.log(process.pid)"])).stdout.trim();
    await writeFile(lock, `${JSON.stringify({ host: hostname(), pid: Number(dead), started: "2026-11-28T01:02:03.000Z", command: "sync" })}\n`);
    const taken = await runCli(["sync", "--source", server.url, "--dest", dest.url, ...auth()], { env: env() });
    expect(taken.code, taken.stderr).toBe(0);
    expect(await readFile(join(dest.local, "a.txt"), "utf8")).toBe("a\n");
  }, 60_000);

  it.each([
    [11, "after-some-files"],
    [23, "during-publish"],
    [37, "at-publish-start"],
  ] as const)("seed %i: kill -9 (%s), then the next run leaves a share that verifies clean", async (seed, mode) => {
    expect(MODES).toContain(mode);
    const random = prng(seed);
    const up = join(dir, `up-kill-${seed}`);
    await makeUpstream(up, treeA());
    const setA = await payloadTree(up);
    server = await startVendorServer(up);
    const dest = await shareFolder(`store-kill-${seed}`);
    expect((await runCli(["sync", "--source", server.url, "--dest", dest.url, ...auth()], { env: env() })).code).toBe(0);
    const b = changeToB();
    await makeUpstream(up, b.tree, { remove: b.remove });
    const setB = await payloadTree(up);
    server.setFault("*", { kind: "slow", delayMs: 10, chunkBytes: 8192 });

    const killed = await runAndKill("sync", ["--source", server.url, "--dest", dest.url, "--concurrency", "2", ...auth()], mode, random, env());
    expect(killed.killed || killed.code === 0, `the sync neither finished nor was killed (${killed.code}): ${killed.stderr}`).toBe(true);
    // Before the publish began nothing of B is in the tree.
    if (!killed.events.some((e) => e.type === "publish:start")) expect(await payloadTree(dest.local)).toEqual(setA);

    server.setFault("*", undefined);
    const next = await runCli(["sync", "--source", server.url, "--dest", dest.url, ...auth()], { env: env() });
    expect(next.code, `the sync after the kill (${killed.point}): ${next.stderr}`).toBe(0);
    const after = await payloadTree(dest.local);
    expect(whichTree(after, { A: setA, B: setB })).toBe("B");
    const verified = await runCli(["verify", dest.local]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    if (hasCommand("smbclient")) {
      const copy = await viaSmbclient(dest.name, join(dir, `copy-kill-${seed}`));
      expect(await payloadTree(copy)).toEqual(setB);
    }
    console.log(`seed ${seed}: killed ${killed.killed ? `at ${killed.point}` : "never (the run finished first)"}; the next run published B`);
  }, 180_000);

  it.skipIf(service?.signingUrl === undefined)("explains that a share on a server requiring signing cannot hold the mirror, and how to mount it instead", async () => {
    const folder = await smbFolder(smb, "store-signing");
    folders.push(folder);
    const up = join(dir, "up-signing");
    await makeUpstream(up, { "a.txt": "a\n" });
    const r = await runCli(["sync", "--source", up, "--dest", smbUrl(smb, folder.name, (smb.signingUrl as URL).port), ...auth()], { env: env() });
    expect(r.code).toBe(EXIT.io);
    expect(r.stderr).toMatch(/requires SMB signing/);
    expect(r.stderr).toMatch(/Mount the share instead.*mount -t cifs.*UNC path/);
    expect(r.stderr).not.toContain(smb.password);
  }, 60_000);
});
