// The endpoint store of `pull` on a real file system: whole sets behind a switched link, shared inodes, leftovers of a crash, generations.
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formatTimestamp, type Manifest, MANIFEST_FORMAT } from "../../src/core/manifest.js";
import type { Store } from "../../src/core/store.js";
import { createEndpointStore, endpointHome, isEndpoint } from "../../src/stores/endpoint.js";
import { scratchDir } from "../support/cli.js";
import { objectFiles } from "../support/payload-tree.js";

let dir: string;
let cleanup: () => Promise<void>;
let target: string;

beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("endpoint"));
  target = join(dir, "bases");
});
afterEach(() => cleanup());

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

async function* once(data: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(data);
}

/** Stages what the committed set lacks, as the engine does, and publishes `files` as `version`. */
async function apply(store: Store, version: number, files: Record<string, string>, keep = 1): Promise<void> {
  const release = await store.lock("test");
  try {
    await store.recover();
    const held = new Set((await store.readCommitted())?.manifest.files.map((f) => f.sha256));
    for (const content of Object.values(files)) {
      if (!held.has(sha(content)) && !(await store.hasObject(sha(content), content.length))) await store.receive(sha(content), once(content), { size: content.length, sha256: sha(content), append: false });
    }
    const next: Manifest = {
      format: MANIFEST_FORMAT,
      version,
      created: formatTimestamp(new Date()),
      origin: { generator: "test" },
      files: Object.entries(files)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([path, content]) => ({ path, size: content.length, sha256: sha(content) })),
    };
    await store.publish(next, { keepGenerations: keep });
  } finally {
    await release();
  }
}

describe("endpoint store", () => {
  it("switches the link between complete sets, shares unchanged files by hard link, and keeps `keep` previous sets", async () => {
    const store = createEndpointStore(target);
    await apply(store, 1, { "a.db": "alpha", "b/c.db": "gamma" });
    await apply(store, 2, { "a.db": "alpha", "b/c.db": "gamma 2" });
    expect(await readlink(target)).toBe(join(".bases.update-mirror", "sets", "2"));
    expect(await isEndpoint(target)).toBe(true);
    expect(await readFile(join(target, "b/c.db"), "utf8")).toBe("gamma 2");
    const home = endpointHome(target);
    const [inNew, inOld] = await Promise.all([stat(join(target, "a.db")), stat(join(home, "sets", "1", "a.db"))]);
    expect(inNew.ino).toBe(inOld.ino);
    expect(await store.generations()).toEqual([1]);
    expect((await store.readGeneration(1)).files.map((f) => f.path)).toEqual(["a.db", "b/c.db"]);
    // Staging is emptied once the content lives in a set.
    expect(await objectFiles(join(home, "private", "objects"))).toEqual([]);

    await apply(store, 3, { "a.db": "alpha 3" });
    expect((await readdir(join(home, "sets"))).sort()).toEqual(["2", "3"]);
    await expect(store.readGeneration(1)).rejects.toThrow(/set 1 is not kept/);
  });

  it("clears what an interrupted publish left, and the link still names the previous set", async () => {
    const store = createEndpointStore(target);
    await apply(store, 1, { "a.db": "alpha" });
    const home = endpointHome(target);
    await mkdir(join(home, "sets", ".build-2", "half"), { recursive: true });
    await writeFile(join(home, "sets", ".build-2", "half", "x"), "torn");
    await symlink("nowhere", join(dir, ".bases.link-0badc0de"));
    expect((await store.readCommitted())?.manifest.version).toBe(1);
    await apply(store, 2, { "a.db": "alpha 2" });
    expect((await readdir(join(home, "sets"))).sort()).toEqual(["1", "2"]);
    expect((await readdir(dir)).sort()).toEqual([".bases.update-mirror", "bases"]);
  });

  it("takes an empty folder's place, but refuses a link it did not make", async () => {
    await mkdir(target);
    await apply(createEndpointStore(target), 1, { "a.db": "alpha" });
    expect(await readFile(join(target, "a.db"), "utf8")).toBe("alpha");

    const other = join(dir, "other");
    await mkdir(join(dir, "elsewhere"));
    await symlink("elsewhere", other);
    const store = createEndpointStore(other);
    await expect(store.lock("test")).rejects.toThrow(/is a link to .*elsewhere, not to a set of/);
    expect(await isEndpoint(other)).toBe(false);
  });
});
