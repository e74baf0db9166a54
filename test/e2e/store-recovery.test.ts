// Folder store publish guarantees: a publish interrupted half-way is finished by the next run from its journal.
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formatTimestamp, MANIFEST_FORMAT, type Manifest, serializeManifest, sortFiles } from "../../src/core/manifest.js";
import { createFolderStore } from "../../src/stores/folder.js";
import { verifyTree } from "../../src/mirror/verify-tree.js";
import { scratchDir } from "../support/cli.js";

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("store"));
});
afterEach(async () => cleanup());

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

function manifestOf(version: number, files: Record<string, string>): Manifest {
  return {
    format: MANIFEST_FORMAT,
    version,
    created: formatTimestamp(new Date()),
    origin: { generator: "test" },
    files: sortFiles(Object.entries(files).map(([path, content]) => ({ path, size: Buffer.byteLength(content), sha256: sha(content) }))),
  };
}

async function stageAll(store: ReturnType<typeof createFolderStore>, files: Record<string, string>) {
  for (const content of Object.values(files)) {
    await store.receive(sha(content), Readable.from([Buffer.from(content)]), { size: Buffer.byteLength(content), sha256: sha(content), append: false });
  }
}

describe("folder store", () => {
  it("finishes an interrupted publish from its journal and keeps the old generation", async () => {
    const root = join(dir, "m");
    const store = createFolderStore(root);
    const v1 = { "a.txt": "one", "b/c.txt": "two", "gone.txt": "bye" };
    await stageAll(store, v1);
    await store.publish(manifestOf(1, v1), { keepGenerations: 3 });
    expect((await verifyTree(root)).ok).toBe(true);

    const v2 = { "a.txt": "ONE", "b/c.txt": "two", "z/new.txt": "new" };
    await stageAll(store, v2);
    // A folder where a file must go makes the publish fail after the journal is written and a.txt is placed.
    await mkdir(join(root, "z", "new.txt"), { recursive: true });
    await expect(store.publish(manifestOf(2, v2), { keepGenerations: 3 })).rejects.toThrow(/publishing version 2/);
    // Still the old manifest in force, and the journal left behind.
    expect(JSON.parse(await readFile(join(root, ".update-mirror/manifest.json"), "utf8")).version).toBe(1);
    await readFile(join(root, ".update-mirror/private/journal.json"));

    await rm(join(root, "z", "new.txt"), { recursive: true });
    expect(await store.recover()).toBe(2);
    const report = await verifyTree(root);
    expect(report).toMatchObject({ ok: true, version: 2, missing: [], unlisted: [] });
    expect(await readFile(join(root, "a.txt"), "utf8")).toBe("ONE");
    expect(await store.recover()).toBeUndefined();
    expect(await store.generations()).toEqual([1]);
    // The replaced and removed contents are retained for rollback.
    expect(await store.hasObject(sha("one"), 3)).toBe(true);
    expect(await store.hasObject(sha("bye"), 3)).toBe(true);
  });

  it("rolls forward a journal of the older format, with the manifest embedded in it", async () => {
    const root = join(dir, "m");
    const store = createFolderStore(root);
    const v1 = { "a.txt": "one", "gone.txt": "bye" };
    await stageAll(store, v1);
    await store.publish(manifestOf(1, v1), { keepGenerations: 3 });
    const v2 = { "a.txt": "ONE", "z/new.txt": "new" };
    await stageAll(store, v2);
    const next = manifestOf(2, v2);
    // As a publish by an older version leaves it when cut short before placing anything: the
    // committed manifest kept as a generation, then the journal.
    await mkdir(join(root, ".update-mirror/private/manifests"), { recursive: true });
    await writeFile(join(root, ".update-mirror/private/manifests/1.json"), await readFile(join(root, ".update-mirror/manifest.json")));
    const journal = {
      phase: "retain",
      manifest: serializeManifest(next).toString("utf8"),
      keepGenerations: 3,
      place: next.files.map((f) => ({ path: f.path, sha256: f.sha256 })),
      remove: ["gone.txt"],
      retain: [
        { path: "a.txt", sha256: sha("one") },
        { path: "gone.txt", sha256: sha("bye") },
      ],
    };
    await writeFile(join(root, ".update-mirror/private/journal.json"), JSON.stringify(journal));
    expect(await createFolderStore(root).recover()).toBe(2);
    expect(await verifyTree(root)).toMatchObject({ ok: true, version: 2, missing: [], unlisted: [] });
    expect(await readFile(join(root, "a.txt"), "utf8")).toBe("ONE");
    expect(await createFolderStore(root).hasObject(sha("bye"), 3)).toBe(true);
  });

  it("refuses wrong bytes and too many bytes without leaving them staged, and resumes a short transfer", async () => {
    const store = createFolderStore(join(dir, "m"));
    for (const size of [10, 100_000]) {
      // Small bodies are staged from memory, larger ones streamed: both must keep these promises.
      const good = Buffer.alloc(size, 7);
      const wrong = Buffer.from(good);
      wrong[size - 1] = 8;
      const digest = createHash("sha256").update(good).digest("hex");
      await expect(store.receive(`a${size}`, Readable.from([wrong]), { size, sha256: digest, append: false })).rejects.toThrow(/SHA-256/);
      expect(await store.partial(`a${size}`)).toEqual({ size: 0 });
      await expect(store.receive(`b${size}`, Readable.from([good, Buffer.from("x")]), { size, append: false })).rejects.toThrow(/more bytes/);
      expect(await store.partial(`b${size}`)).toEqual({ size: 0 });
      expect(await store.hasObject(digest, size)).toBe(false);
    }
    const size = 100_000;
    const good = Buffer.alloc(size, 3);
    const digest = createHash("sha256").update(good).digest("hex");
    const half = good.subarray(0, size / 2);
    await expect(store.receive("c", Readable.from([half]), { size, sha256: digest, append: false, validator: '"v1"' })).rejects.toThrow(/ended after 50000 of 100000/);
    expect(await store.partial("c")).toEqual({ size: size / 2, validator: '"v1"' });
    const done = await store.receive("c", Readable.from([good.subarray(size / 2)]), { size, sha256: digest, append: true });
    expect(done).toEqual({ sha256: digest, size });
    expect(await store.hasObject(digest, size)).toBe(true);
    expect(await store.partial("c")).toEqual({ size: 0 });
  });

  it("prunes generations beyond the limit and the objects only they needed", async () => {
    const root = join(dir, "m");
    const store = createFolderStore(root);
    for (let v = 1; v <= 4; v += 1) {
      const files = { "f.txt": `version ${v}` };
      await stageAll(store, files);
      await store.publish(manifestOf(v, files), { keepGenerations: 2 });
    }
    expect(await store.generations()).toEqual([3, 2]);
    expect(await store.hasObject(sha("version 1"), 9)).toBe(false);
    expect(await store.hasObject(sha("version 2"), 9)).toBe(true);
  });

  it("keeps objects in shard folders, and moves those version 0.1 kept flat into theirs", async () => {
    const root = join(dir, "m");
    const store = createFolderStore(root);
    for (const v of [1, 2]) {
      const files = { "f.txt": `version ${v}`, "g.txt": "same" };
      await stageAll(store, files);
      await store.publish(manifestOf(v, files), { keepGenerations: 3 });
    }
    const objects = join(root, ".update-mirror/private/objects");
    const old = sha("version 1");
    expect(await readFile(join(objects, old.slice(0, 2), old), "utf8")).toBe("version 1");
    expect((await readdir(objects)).every((name) => /^[0-9a-f]{2}$/.test(name))).toBe(true);

    // The layout of version 0.1: every object directly in objects/.
    await rename(join(objects, old.slice(0, 2), old), join(objects, old));
    const reopened = createFolderStore(root);
    expect(await reopened.recover()).toBeUndefined();
    expect(await reopened.hasObject(old, 9)).toBe(true);
    expect(await readdir(objects)).not.toContain(old);
    // Generation 1 again, placed from the retained object.
    const v1 = { "f.txt": "version 1", "g.txt": "same" };
    await reopened.publish(manifestOf(3, v1), { keepGenerations: 3 });
    expect(await readFile(join(root, "f.txt"), "utf8")).toBe("version 1");
    expect((await verifyTree(root)).ok).toBe(true);
  });
});
