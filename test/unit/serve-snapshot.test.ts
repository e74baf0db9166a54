// `serve`'s snapshot and content rules on real files: which identities are trusted, symlinks never opened, objects and changed files only after a hash check.
import { createReadStream } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rename, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { retainedLayout } from "../../src/mirror/retained.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NotFoundError } from "../../src/core/errors.js";
import { type Content, createContentStore } from "../../src/serve/content.js";
import { openLiveSnapshot } from "../../src/serve/live-snapshot.js";
import { loadSnapshot, type Snapshot, type SnapshotFile } from "../../src/serve/snapshot.js";
import { makeKeyPair, makeUpstream } from "../servers/vendor-server.js";
import { sha256 } from "../e2e/serve-harness.js";

let dir: string;
let root: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "um-serve-snapshot-"));
  root = join(dir, "mirror");
  await makeUpstream(root, { "a/one.txt": "one\n", "a/two.txt": "two\n", "big.bin": Buffer.alloc(100_000, 7), "c/d/three.txt": "three\n" });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function file(snapshot: Snapshot, path: string): SnapshotFile {
  const entry = snapshot.files.get(path);
  if (entry === undefined) throw new Error(`${path} not in the snapshot`);
  return entry;
}

async function bytesOf(content: Content | undefined): Promise<Buffer | undefined> {
  if (content === undefined) return undefined;
  if (content.kind === "buffer") return content.data;
  const chunks: Buffer[] = [];
  // Positioned reads from 0; the stream closes the descriptor at the end.
  for await (const chunk of createReadStream("", { fd: content.fd, start: 0 })) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function replace(path: string, content: string | Buffer): Promise<void> {
  // As a publish does: a new inode renamed over the old name.
  const tmp = join(dir, "tmp-replace");
  await writeFile(tmp, content);
  await rename(tmp, join(root, path));
}

describe("loadSnapshot", () => {
  it("trusts files unchanged since the commit and lists folders, documents and hashes", async () => {
    const s = await loadSnapshot(root);
    expect(s.version).toBe(1);
    expect([...s.files.keys()]).toEqual(["a/one.txt", "a/two.txt", "big.bin", "c/d/three.txt"]);
    expect([...s.dirs].sort()).toEqual(["", "a", "c", "c/d"]);
    expect(s.unverifiedFiles).toBe(0);
    for (const f of s.files.values()) expect(f.trusted).toBeDefined();
    expect([...s.documents.keys()]).toEqual(["manifest.json", "SHA256SUMS"]);
    expect(s.documents.get("SHA256SUMS")?.bytes.equals(await readFile(join(root, ".update-mirror/SHA256SUMS")))).toBe(true);
    expect(s.byHash.get(sha256("one\n"))?.file?.path).toBe("a/one.txt");
  });

  it("does not trust files changed after the commit, and blocks symlinks and what lies below a symlinked folder", async () => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    await chmod(join(root, "a/one.txt"), 0o600);
    await rm(join(root, "a/two.txt"));
    await symlink(join(root, "a/one.txt"), join(root, "a/two.txt"));
    await rename(join(root, "c"), join(dir, "moved-c"));
    await symlink(join(dir, "moved-c"), join(root, "c"));
    await rm(join(root, "big.bin"));
    const s = await loadSnapshot(root);
    expect(file(s, "a/one.txt")).toMatchObject({ trusted: undefined, blocked: false });
    expect(file(s, "a/two.txt")).toMatchObject({ trusted: undefined, blocked: true });
    expect(file(s, "c/d/three.txt")).toMatchObject({ trusted: undefined, blocked: true });
    expect(file(s, "big.bin")).toMatchObject({ trusted: undefined, blocked: false });
    expect(s.unverifiedFiles).toBe(4);
  });

  it("takes the hashes of retained generations, and refuses a folder that is not a mirror", async () => {
    const manifests = join(root, ".update-mirror/private/manifests");
    await mkdir(manifests, { recursive: true });
    const old = await makeUpstream(join(dir, "old"), { "gone.txt": "gone\n" });
    await writeFile(join(manifests, "7.json"), old.manifestBytes);
    await writeFile(join(manifests, "8.json"), "not a manifest");
    const s = await loadSnapshot(root);
    expect(s.retained).toEqual([7]);
    expect(s.byHash.get(sha256("gone\n"))).toEqual({ size: 5 });
    expect(s.warnings.join("\n")).toMatch(/retained generation 8 is not served by hash/);
    await expect(loadSnapshot(join(dir, "old", "nowhere"))).rejects.toBeInstanceOf(NotFoundError);
    await expect(loadSnapshot(dir)).rejects.toThrow(`${dir} is not a mirror: there is no committed manifest at ${join(dir, ".update-mirror/manifest.json")}`);
  });

  it("never pairs a manifest with a signature written after it (a commit under way)", async () => {
    const { secretKey } = await makeKeyPair(join(dir, "key"));
    await makeUpstream(root, {}, { signingKey: secretKey });
    expect((await loadSnapshot(root)).documents.has("manifest.json.minisig")).toBe(true);
    // The next commit has written its signature but not yet its manifest.
    const later = new Date(Date.now() + 60_000);
    await utimes(join(root, ".update-mirror/manifest.json.minisig"), later, later);
    const s = await loadSnapshot(root);
    expect(s.documents.has("manifest.json.minisig")).toBe(false);
    expect(s.warnings.join("\n")).toMatch(/signature on disk is newer than the manifest/);
  });
});

describe("content", () => {
  it("serves a trusted file from its path, and small files from memory afterwards", async () => {
    const store = createContentStore({ cacheBytes: 1 << 20 });
    const s = await loadSnapshot(root);
    expect((await bytesOf(await store.forFile(s, file(s, "a/one.txt"), false)))?.toString()).toBe("one\n");
    await rm(join(root, "a/one.txt"));
    expect((await bytesOf(await store.forFile(s, file(s, "a/one.txt"), false)))?.toString()).toBe("one\n");
    const big = await store.forFile(s, file(s, "big.bin"), false);
    expect(big?.kind).toBe("fd");
    expect((await bytesOf(big))?.equals(Buffer.alloc(100_000, 7))).toBe(true);
    expect(store.stats()).toMatchObject({ cachedFiles: 1, hashChecks: 0 });
  });

  it("after the path changed, serves the old bytes only from a retained object whose hash was checked", async () => {
    const store = createContentStore({ cacheBytes: 0 });
    const s = await loadSnapshot(root);
    const entry = file(s, "a/two.txt");
    await replace("a/two.txt", "TWO\n");
    expect(await store.forFile(s, entry, false)).toBeUndefined();
    expect(await store.forFile(s, entry, true)).toBeUndefined();
    const object = retainedLayout(root).object(entry.sha256);
    await mkdir(dirname(object), { recursive: true });
    // Right size, wrong bytes (a torn object): refused.
    await writeFile(object, "tw0\n");
    expect(await store.forFile(s, entry, true)).toBeUndefined();
    await writeFile(object, "two\n");
    expect(await store.forFile(s, entry, false)).toBeUndefined();
    expect((await bytesOf(await store.forFile(s, entry, true)))?.toString()).toBe("two\n");
    const checks = store.stats().hashChecks;
    expect((await bytesOf(await store.forFile(s, entry, false)))?.toString()).toBe("two\n");
    expect(store.stats().hashChecks).toBe(checks);
  });

  it("accepts a changed path again once its bytes hash to the listed value", async () => {
    const store = createContentStore({ cacheBytes: 0 });
    const s = await loadSnapshot(root);
    const entry = file(s, "big.bin");
    await replace("big.bin", Buffer.alloc(100_000, 7));
    expect(await store.forFile(s, entry, false)).toBeUndefined();
    expect((await bytesOf(await store.forFile(s, entry, true)))?.equals(Buffer.alloc(100_000, 7))).toBe(true);
    expect((await bytesOf(await store.forFile(s, entry, false)))?.length).toBe(100_000);
  });

  it("never opens a symlink, nor a file reached through a folder swapped for a symlink, even with the right bytes", async () => {
    const store = createContentStore({ cacheBytes: 0 });
    const s = await loadSnapshot(root);
    await writeFile(join(dir, "outside.txt"), "one\n");
    await rm(join(root, "a/one.txt"));
    await symlink(join(dir, "outside.txt"), join(root, "a/one.txt"));
    expect(await store.forFile(s, file(s, "a/one.txt"), true)).toBeUndefined();
    await mkdir(join(dir, "outside-c/d"), { recursive: true });
    await writeFile(join(dir, "outside-c/d/three.txt"), "three\n");
    await rm(join(root, "c"), { recursive: true });
    await symlink(join(dir, "outside-c"), join(root, "c"));
    expect(await store.forFile(s, file(s, "c/d/three.txt"), true)).toBeUndefined();
  });
});

describe("live snapshot", () => {
  it("keeps serving the last good manifest when a new one is invalid or missing, and says so in health()", async () => {
    const warnings: string[] = [];
    const live = await openLiveSnapshot(root, { pollMs: 60_000, log: { info: () => undefined, warn: () => undefined, error: (_o, msg) => warnings.push(String(msg)) } });
    try {
      const first = live.current();
      expect(live.health()).toEqual({ ok: true });
      const manifest = join(root, ".update-mirror/manifest.json");
      const good = await readFile(manifest);
      await writeFile(join(dir, "bad.json"), "{ not a manifest");
      await rename(join(dir, "bad.json"), manifest);
      expect(await live.refresh()).toBe(first);
      expect(live.health()).toMatchObject({ ok: false, error: expect.stringMatching(/manifest\.json: not valid JSON/) });
      expect(live.counts()).toEqual({ reloads: 0, failures: 1 });
      expect(warnings).toEqual(["could not load the new manifest; still serving the previous one"]);
      // The same broken file is not loaded again on every check.
      await live.refresh();
      expect(live.counts().failures).toBe(1);
      await rm(manifest);
      await live.refresh();
      expect(live.health()).toMatchObject({ ok: false, error: expect.stringMatching(/no committed manifest/) });
      // Fixed by the next commit: served again, healthy again.
      await writeFile(manifest, good);
      await makeUpstream(root, { "a/one.txt": "one, again\n" });
      const swapped = await live.refresh();
      expect(swapped).not.toBe(first);
      expect(swapped.version).toBe(2);
      expect(live.health()).toEqual({ ok: true });
      expect(live.counts().reloads).toBeGreaterThanOrEqual(1);
    } finally {
      live.close();
    }
  });
});
