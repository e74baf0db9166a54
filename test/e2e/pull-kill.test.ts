// kill -9 of a real `pull` at seeded points (mid-fetch, after the last file, inside the publish): the endpoint shows the whole old set or the whole new one, never a mix, and the next pull finishes cleanly.
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, scratchDir } from "../support/cli.js";
import { objectFiles, payloadTree, whichTree } from "../support/payload-tree.js";
import { makeUpstream, startVendorServer, type VendorServer } from "../servers/vendor-server.js";
import { type KillMode, MODES, prng, runAndKill } from "../support/kill-points.js";

let dir: string;
let cleanup: () => Promise<void>;
let server: VendorServer | undefined;

beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("pull-kill"));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await cleanup();
});

const BIG = 64 * 1024;
const pad = (i: number) => String(i).padStart(2, "0");
const big = (path: string, generation: string) => Buffer.concat([Buffer.from(`${path} ${generation}\n`), Buffer.alloc(BIG, path.length + generation.length)]);

/** Set A: 20 big files (slow to fetch) and 150 small ones (many links to make in a publish). */
function treeA(): Record<string, Buffer> {
  const tree: Record<string, Buffer> = {};
  for (let i = 0; i < 20; i++) tree[`db/big-${pad(i)}.bin`] = big(`db/big-${pad(i)}.bin`, "A");
  for (let i = 0; i < 150; i++) tree[`small/s-${String(i).padStart(3, "0")}.txt`] = Buffer.from(`small ${i} A\n`);
  return tree;
}

/** Set B over A: 12 big files change, 4 are added, 3 big and 10 small ones go. */
function changeToB(): { tree: Record<string, Buffer>; remove: string[] } {
  const tree: Record<string, Buffer> = {};
  for (let i = 0; i < 12; i++) tree[`db/big-${pad(i)}.bin`] = big(`db/big-${pad(i)}.bin`, "B");
  for (let i = 0; i < 4; i++) tree[`db/new/added-${i}.bin`] = big(`db/new/added-${i}.bin`, "B");
  tree["small/s-000.txt"] = Buffer.from("small 0 B, a different size\n");
  const remove = [17, 18, 19].map((i) => `db/big-${pad(i)}.bin`);
  for (let i = 140; i < 150; i++) remove.push(`small/s-${i}.txt`);
  return { tree, remove };
}

const SEEDS = [11, 23, 37, 41, 59, 73];

describe("kill -9 of pull", () => {
  it.each(SEEDS.map((seed, i) => [seed, MODES[i % MODES.length] as KillMode]))("seed %i (%s): the folder is the whole old set or the whole new one, and the next pull completes", async (seed, mode) => {
    const random = prng(seed);
    const up = join(dir, "up");
    const to = join(dir, "endpoint", "bases");
    await mkdir(join(dir, "endpoint"));
    await makeUpstream(up, treeA());
    const setA = await payloadTree(up);
    server = await startVendorServer(up);
    const first = await runCli(["pull", "--source", server.url, "--to", to]);
    expect(first.code, first.stderr).toBe(0);
    expect(await payloadTree(to)).toEqual(setA);

    const b = changeToB();
    await makeUpstream(up, b.tree, { remove: b.remove });
    const setB = await payloadTree(up);
    expect(setB).not.toEqual(setA);
    // Slow enough that a run lasts a second or so, so the kill points spread over it.
    server.setFault("*", { kind: "slow", delayMs: 12, chunkBytes: 8192 });

    const run = await runAndKill("pull", ["--source", server.url, "--to", to, "--concurrency", "2"], mode, random);
    const seen = new Set(run.events.map((e) => e.type));
    expect(run.killed || run.code === 0, `the pull neither finished nor was killed (${run.code}): ${run.stderr}`).toBe(true);

    // Whatever the instant: a link to a complete set, A or B, never a mix.
    expect((await lstat(to)).isSymbolicLink()).toBe(true);
    expect(await readlink(to)).toMatch(/^\.bases\.update-mirror[/\\]sets[/\\]\d+$/);
    const between = await payloadTree(to);
    const which = whichTree(between, { A: setA, B: setB });
    expect(which, `after the kill (${run.point}) the folder is neither set A nor set B`).not.toBe("mix");
    // The switch is the last step of a publish: before it began the folder is A; once the run reported done, B.
    if (!seen.has("publish:start")) expect(which, `killed (${run.point}) before the publish began`).toBe("A");
    if (seen.has("run:done")) expect(which).toBe("B");
    const verified = await runCli(["verify", to]);
    expect(verified.code, `verify after the kill (${run.point}): ${verified.stdout}${verified.stderr}`).toBe(0);
    const manifest = JSON.parse(await readFile(join(to, ".update-mirror", "manifest.json"), "utf8")) as { origin: { upstreamVersion: number } };
    expect(manifest.origin.upstreamVersion).toBe(which === "A" ? 1 : 2);

    // Leftovers of an interrupted publish, real or planted, are swept by the next run.
    const home = join(dir, "endpoint", ".bases.update-mirror");
    await mkdir(join(home, "sets", ".build-999", "db"), { recursive: true });
    await writeFile(join(home, "sets", ".build-999", "db", "half.bin"), "half a set\n");
    await symlink(join(".bases.update-mirror", "sets", "1"), join(dir, "endpoint", ".bases.link-deadbeef"));

    server.setFault("*", undefined);
    const next = await runCli(["pull", "--source", server.url, "--to", to]);
    expect(next.code, `the pull after the kill (${run.point}): ${next.stderr}`).toBe(0);
    expect(await payloadTree(to)).toEqual(setB);
    const again = await runCli(["verify", to]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect((await readdir(join(dir, "endpoint"))).sort()).toEqual([".bases.update-mirror", "bases"]);
    const sets = await readdir(join(home, "sets"));
    expect(sets.filter((n) => !/^\d+$/.test(n))).toEqual([]);
    expect(sets.length).toBeLessThanOrEqual(2);
    // Downloads cut by the kill were resumed and consumed; a publish leaves no staged objects behind (they live on in the set).
    expect(await readdir(join(home, "private", "partial"))).toEqual([]);
    if (which === "A") expect(await objectFiles(join(home, "private", "objects"))).toEqual([]);
    console.log(`seed ${seed}: killed ${run.killed ? `at ${run.point}` : "never (the run finished first)"} -> set ${which}`);
  }, 180_000);
});
