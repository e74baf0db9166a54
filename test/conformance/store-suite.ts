// The Store contract (src/core/store.ts) as one suite, written once and run against every kind; differences between kinds are options with a reason.
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IntegrityError, LockedError, NotFoundError } from "../../src/core/errors.js";
import { formatTimestamp, MANIFEST_FORMAT, type Manifest, parseManifest, sortFiles } from "../../src/core/manifest.js";
import type { MirrorState, Store } from "../../src/core/store.js";
import { type Capability, CONFORMANCE_TREE } from "./source-suite.js";

/** A store over a fresh, empty location, and a way to look at what it published without asking it. */
export interface StoreUnderTest {
  store: Store;
  /** The bytes a reader of the published mirror finds at `path` ('/'-separated), read independently of the store; undefined when absent. */
  readPayload(path: string): Promise<Buffer | undefined>;
  /** Every published payload file ('/'-separated paths), the metadata folder `.update-mirror` excluded. */
  listPayload(): Promise<string[]>;
  /** Releases what the factory opened (servers, remote folders); the suite calls `store.close?.()` before it and removes `dir` after. */
  close(): Promise<void>;
}

/**
 * Makes the store for one test. `dir` is a fresh, empty local folder the suite removes afterwards; a
 * kind whose location is elsewhere (a share, a server) makes its own fresh location there and removes
 * it in close().
 */
export type StoreFactory = (dir: string) => StoreUnderTest | Promise<StoreUnderTest>;

export interface StoreSuiteOptions {
  /**
   * Why this kind cannot be tested here (a service it needs is missing): the suite is then declared
   * skipped with the reason in its name and printed, as the Source suite does for FTP and SMB.
   */
  skip?: string;
  /**
   * receive() keeps the bytes of a body (over 64 KiB) that ended short or threw, with its validator,
   * and continues them with `append: true`. Without it, what the kind does instead is tested: a failed
   * body leaves no partial, and the whole body received again completes.
   */
  resume: Capability;
}

const sha = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");
const UNKNOWN_SHA = sha("content no test ever stages");

// Two sizes, because receive may take two roads: small bodies gathered in memory, larger ones streamed
// to a partial. LARGE is above the folder stores' 64 KiB threshold, and never a multiple of a chunk.
const SMALL = Buffer.from(`${"x".repeat(999)}\n`);
const LARGE = Buffer.from(Array.from({ length: 256 * 1024 + 17 }, (_, i) => (i * 7919) % 251));
const CHUNK = 16 * 1024;

async function* chunked(data: Buffer, chunk = CHUNK): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += chunk) yield data.subarray(at, Math.min(at + chunk, data.length));
}

/** Yields the first `bytes` of `data`, then throws `error`, as a transfer cut by the network does. */
async function* cutAfter(data: Buffer, bytes: number, error: Error): AsyncGenerator<Uint8Array> {
  yield* chunked(data.subarray(0, bytes));
  throw error;
}

function why(capability: Capability): string {
  return capability === true ? "" : ` (${capability.unsupported})`;
}

type Tree = Readonly<Record<string, Buffer>>;

function manifestOf(version: number, tree: Tree): Manifest {
  return {
    format: MANIFEST_FORMAT,
    version,
    created: formatTimestamp(new Date()),
    origin: { generator: "update-mirror/conformance" },
    files: sortFiles(Object.entries(tree).map(([path, content]) => ({ path, size: content.length, sha256: sha(content) }))),
  };
}

/** Receives every distinct content of `tree`, each under its hash as the engine's key. */
async function stage(store: Store, tree: Tree): Promise<void> {
  const seen = new Set<string>();
  for (const content of Object.values(tree)) {
    const hash = sha(content);
    if (seen.has(hash)) continue;
    seen.add(hash);
    await store.receive(hash, chunked(content), { size: content.length, sha256: hash, append: false });
  }
}

const FRESH_STATE: MirrorState = { highestVersion: 0, sources: {}, trusted: {}, listed: {} };

/**
 * Declares the suite for one kind. `factory(dir)` is called for every test with a fresh empty folder,
 * so tests never see each other's leftovers. Where a kind differs (see StoreSuiteOptions), the test of
 * what it does instead is generated in place of the one that does not apply.
 */
export function describeStoreConformance(name: string, factory: StoreFactory, options: StoreSuiteOptions): void {
  const title = `Store conformance: ${name}`;
  if (options.skip !== undefined) {
    console.warn(`skipping ${title}: ${options.skip}`);
    describe.skip(title, () => {
      it(`needs: ${options.skip}`, () => undefined);
    });
    return;
  }

  describe(title, () => {
    let dir: string;
    let sut: StoreUnderTest;
    let store: Store;

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "um-store-conformance-"));
      sut = await factory(dir);
      store = sut.store;
    });
    afterEach(async () => {
      await sut?.store.close?.();
      await sut?.close();
      await rm(dir, { recursive: true, force: true });
    });

    /** Stages and publishes `tree` as `version`. */
    async function publishTree(version: number, tree: Tree, keepGenerations = 3): Promise<Manifest> {
      await stage(store, tree);
      const next = manifestOf(version, tree);
      await store.publish(next, { keepGenerations });
      return next;
    }

    /** The published payload is exactly `tree`: no file more or less, every byte as given. */
    async function expectPayload(tree: Tree): Promise<void> {
      expect((await sut.listPayload()).sort()).toEqual(Object.keys(tree).sort());
      for (const [path, content] of Object.entries(tree)) {
        const found = await sut.readPayload(path);
        expect(found, path).toBeDefined();
        expect((found as Buffer).equals(content), path).toBe(true);
      }
    }

    async function expectCommitted(manifest: Manifest): Promise<void> {
      const committed = await store.readCommitted();
      expect(committed).toBeDefined();
      if (!committed) return;
      expect(committed.manifest).toEqual(manifest);
      expect(parseManifest(committed.bytes, "committed bytes")).toEqual(manifest);
      expect(committed.drifted ?? []).toEqual([]);
    }

    // --- lock, state, an empty store ---

    it("an empty store has no committed manifest, no payload, no generations and nothing to recover", async () => {
      expect(await store.readCommitted()).toBeUndefined();
      expect(await sut.listPayload()).toEqual([]);
      expect(await store.generations()).toEqual([]);
      expect(await store.recover()).toBeUndefined();
      await expect(store.readGeneration(1)).rejects.toBeInstanceOf(NotFoundError);
    });

    it("lock: a second lock is refused with LockedError naming the holder; release lets a new lock be taken", async () => {
      const release = await store.lock("conformance-first");
      const second = store.lock("conformance-second");
      await expect(second).rejects.toBeInstanceOf(LockedError);
      const message = await second.then(
        () => "",
        (err: Error) => err.message,
      );
      // The holder as the contract names it: its host and PID.
      expect(message).toContain(hostname());
      expect(message).toContain(String(process.pid));
      await release();
      const again = await store.lock("conformance-third");
      await expect(store.lock("conformance-fourth")).rejects.toBeInstanceOf(LockedError);
      await again();
      await (await store.lock("conformance-fifth"))();
    });

    it("readState of a fresh store gives the defaults; writeState then readState round-trips and replaces", async () => {
      expect(await store.readState()).toEqual(FRESH_STATE);
      const full: MirrorState = {
        highestVersion: 7,
        sources: { "https://vendor.example/updates/": { validator: '"abc"', version: 7, fingerprint: "f1", coolDownUntil: "2030-01-01T00:00:00.000Z" }, "/mnt/medium": {} },
        trusted: { "0123456789ABCDEF": 41 },
        heldUpstreamVersion: 40,
        listed: { "a b/ünï.bin": { size: 3, mtimeMs: 1_700_000_000_123, sha256: sha("abc") } },
        upstreams: [{ source: "https://vendor.example/updates/", version: 41, created: "2030-01-01T00:00:00Z", expires: "2030-02-01T00:00:00Z" }],
        lastRun: { started: "2030-01-01T00:00:00.000Z", finished: "2030-01-01T00:01:00.000Z", result: "failed", version: 7, error: { code: "E_SOURCE", message: "x" } },
        lastSuccess: "2029-12-31T00:00:00.000Z",
      };
      await store.writeState(full);
      const written = structuredClone(full);
      // What the caller passed stays the caller's: changing it afterwards changes nothing stored.
      full.highestVersion = 1_000;
      full.trusted.other = 1;
      expect(await store.readState()).toEqual(written);
      // A later state replaces the earlier one as a whole: fields it lacks are gone.
      const smaller: MirrorState = { highestVersion: 8, sources: {}, trusted: {}, listed: {} };
      await store.writeState(smaller);
      expect(await store.readState()).toEqual(smaller);
      // What readState returns is the caller's to change.
      const copy = await store.readState();
      copy.highestVersion = 99;
      copy.sources.x = {};
      expect(await store.readState()).toEqual(smaller);
    });

    it("freeBytes is a positive number, under the lock as every job asks it", async () => {
      const release = await store.lock("conformance");
      try {
        const free = await store.freeBytes();
        expect(Number.isFinite(free)).toBe(true);
        expect(free).toBeGreaterThan(0);
      } finally {
        await release();
      }
    });

    // --- receive ---

    for (const [size, content] of [
      ["small", SMALL],
      ["large", LARGE],
    ] as const) {
      it(`receive (${size} body) returns its SHA-256 and size; the content is an object, not a payload file`, async () => {
        const got = await store.receive("k1", chunked(content), { size: content.length, sha256: sha(content), append: false });
        expect(got).toEqual({ sha256: sha(content), size: content.length });
        expect(await store.hasObject(sha(content), content.length)).toBe(true);
        expect(await store.hasObject(UNKNOWN_SHA, content.length)).toBe(false);
        expect((await store.partial("k1")).size).toBe(0);
        expect(await sut.listPayload()).toEqual([]);
        expect(await store.readCommitted()).toBeUndefined();
      });

      it(`receive (${size} body) without an expected hash computes it`, async () => {
        const got = await store.receive("k1", chunked(content), { size: content.length, append: false });
        expect(got).toEqual({ sha256: sha(content), size: content.length });
        expect(await store.hasObject(sha(content), content.length)).toBe(true);
      });

      it(`a ${size} body longer than its size is refused with IntegrityError and leaves nothing usable`, async () => {
        const longer = Buffer.concat([content, Buffer.from("one byte too many")]);
        const receiving = store.receive("k1", chunked(longer), { size: content.length, sha256: sha(content), append: false });
        await expect(receiving).rejects.toBeInstanceOf(IntegrityError);
        expect(await store.hasObject(sha(content), content.length)).toBe(false);
        expect(await store.hasObject(sha(longer), longer.length)).toBe(false);
        expect((await store.partial("k1")).size).toBe(0);
        // Also when no hash is expected: the size alone refuses it.
        await expect(store.receive("k2", chunked(longer), { size: content.length, append: false })).rejects.toBeInstanceOf(IntegrityError);
        expect(await store.hasObject(sha(content), content.length)).toBe(false);
        expect((await store.partial("k2")).size).toBe(0);
      });

      it(`a ${size} body with another SHA-256 is refused with a non-retryable IntegrityError and leaves nothing usable`, async () => {
        const other = Buffer.from(content);
        other[other.length >> 1] = ((other[other.length >> 1] as number) + 1) % 256;
        const error = await store.receive("k1", chunked(other), { size: other.length, sha256: sha(content), append: false }).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(error).toBeInstanceOf(IntegrityError);
        // The engine retries a retryable IntegrityError as a cut transfer; wrong bytes must not be.
        expect((error as IntegrityError).retryable).toBe(false);
        expect(await store.hasObject(sha(content), content.length)).toBe(false);
        expect(await store.hasObject(sha(other), other.length)).toBe(false);
        expect((await store.partial("k1")).size).toBe(0);
      });
    }

    it("a zero-length body is an object, and publishes as an empty file", async () => {
      const empty = Buffer.alloc(0);
      expect(await store.receive("empty", chunked(empty), { size: 0, sha256: sha(empty), append: false })).toEqual({ sha256: sha(empty), size: 0 });
      expect(await store.hasObject(sha(empty), 0)).toBe(true);
      const next = manifestOf(1, { "nothing.dat": empty });
      await store.publish(next, { keepGenerations: 1 });
      await expectPayload({ "nothing.dat": empty });
      await expectCommitted(next);
    });

    it("a small body that ends short is refused with IntegrityError; a resume from what partial() reports completes it", async () => {
      const got = 400;
      const error = await store.receive("k1", chunked(SMALL.subarray(0, got)), { size: SMALL.length, sha256: sha(SMALL), append: false }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(IntegrityError);
      expect((error as IntegrityError).retryable).toBe(true);
      expect(await store.hasObject(sha(SMALL), SMALL.length)).toBe(false);
      // A store may keep a small partial or drop it (small bodies are cheap to fetch again); either
      // way, what it reports must be where the next attempt can continue, as the engine does.
      const { size: offset } = await store.partial("k1");
      expect([0, got]).toContain(offset);
      const rest = await store.receive("k1", chunked(SMALL.subarray(offset)), { size: SMALL.length, sha256: sha(SMALL), append: offset > 0 });
      expect(rest).toEqual({ sha256: sha(SMALL), size: SMALL.length });
      expect(await store.hasObject(sha(SMALL), SMALL.length)).toBe(true);
      expect((await store.partial("k1")).size).toBe(0);
    });

    if (options.resume === true) {
      it("a large body that ends short is refused with a retryable IntegrityError; the partial keeps the bytes got and the validator, and append: true completes it", async () => {
        const got = 100_000;
        const error = await store.receive("k1", chunked(LARGE.subarray(0, got)), { size: LARGE.length, sha256: sha(LARGE), append: false, validator: '"v1"' }).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(error).toBeInstanceOf(IntegrityError);
        expect((error as IntegrityError).retryable).toBe(true);
        expect(await store.hasObject(sha(LARGE), LARGE.length)).toBe(false);
        expect(await store.partial("k1")).toEqual({ size: got, validator: '"v1"' });
        const done = await store.receive("k1", chunked(LARGE.subarray(got)), { size: LARGE.length, sha256: sha(LARGE), append: true, validator: '"v1"' });
        expect(done).toEqual({ sha256: sha(LARGE), size: LARGE.length });
        expect(await store.hasObject(sha(LARGE), LARGE.length)).toBe(true);
        expect((await store.partial("k1")).size).toBe(0);
        // The object is the whole content: it publishes byte for byte.
        await store.publish(manifestOf(1, { "large.bin": LARGE }), { keepGenerations: 1 });
        await expectPayload({ "large.bin": LARGE });
      });

      it("a large body that throws mid-stream: its own error is rethrown, the partial keeps what arrived, nothing is published, and a resume completes it", async () => {
        const got = 5 * CHUNK;
        const cut = new Error("connection reset by the test");
        await expect(store.receive("k1", cutAfter(LARGE, got, cut), { size: LARGE.length, sha256: sha(LARGE), append: false })).rejects.toBe(cut);
        expect(await store.hasObject(sha(LARGE), LARGE.length)).toBe(false);
        expect(await store.readCommitted()).toBeUndefined();
        expect(await sut.listPayload()).toEqual([]);
        expect((await store.partial("k1")).size).toBe(got);
        const done = await store.receive("k1", chunked(LARGE.subarray(got)), { size: LARGE.length, sha256: sha(LARGE), append: true });
        expect(done).toEqual({ sha256: sha(LARGE), size: LARGE.length });
        expect(await store.hasObject(sha(LARGE), LARGE.length)).toBe(true);
      });

      it("a resume whose bytes do not add up to the expected hash is refused with IntegrityError and the partial is dropped", async () => {
        const got = 100_000;
        await expect(store.receive("k1", chunked(LARGE.subarray(0, got)), { size: LARGE.length, sha256: sha(LARGE), append: false })).rejects.toBeInstanceOf(IntegrityError);
        const wrongRest = Buffer.alloc(LARGE.length - got, 0x55);
        await expect(store.receive("k1", chunked(wrongRest), { size: LARGE.length, sha256: sha(LARGE), append: true })).rejects.toBeInstanceOf(IntegrityError);
        expect(await store.hasObject(sha(LARGE), LARGE.length)).toBe(false);
        expect((await store.partial("k1")).size).toBe(0);
      });
    } else {
      it(`a large body that ends short or throws leaves no partial; receiving the whole body again completes it${why(options.resume)}`, async () => {
        await expect(store.receive("k1", chunked(LARGE.subarray(0, 100_000)), { size: LARGE.length, sha256: sha(LARGE), append: false })).rejects.toBeInstanceOf(IntegrityError);
        expect((await store.partial("k1")).size).toBe(0);
        const cut = new Error("connection reset by the test");
        await expect(store.receive("k1", cutAfter(LARGE, 5 * CHUNK, cut), { size: LARGE.length, sha256: sha(LARGE), append: false })).rejects.toBe(cut);
        expect((await store.partial("k1")).size).toBe(0);
        expect(await store.hasObject(sha(LARGE), LARGE.length)).toBe(false);
        expect(await store.readCommitted()).toBeUndefined();
        expect(await sut.listPayload()).toEqual([]);
        const done = await store.receive("k1", chunked(LARGE), { size: LARGE.length, sha256: sha(LARGE), append: false });
        expect(done).toEqual({ sha256: sha(LARGE), size: LARGE.length });
      });
    }

    it("receive with append: false starts over, whatever a partial of the key holds", async () => {
      // Leave a partial of other bytes under the key (if the kind keeps one), then receive the whole.
      const garbage = Buffer.alloc(100_000, 0xee);
      await expect(store.receive("k1", chunked(garbage), { size: LARGE.length, append: false })).rejects.toBeInstanceOf(IntegrityError);
      const done = await store.receive("k1", chunked(LARGE), { size: LARGE.length, sha256: sha(LARGE), append: false });
      expect(done).toEqual({ sha256: sha(LARGE), size: LARGE.length });
      expect((await store.partial("k1")).size).toBe(0);
    });

    // --- publish ---

    it("publish places every file with its exact bytes (awkward names, deep folders, empty and large files) and commits the manifest", async () => {
      const next = await publishTree(1, CONFORMANCE_TREE);
      await expectPayload(CONFORMANCE_TREE);
      await expectCommitted(next);
      expect((await store.readCommitted())?.signed).toBe(false);
      expect(await store.generations()).toEqual([]);
    });

    it("one staged object is placed at every path that lists its content", async () => {
      const same = Buffer.from("the same bytes at three paths\n");
      const tree = { "a.bin": same, "b/a.bin": same, "c/d/a.bin": same, "other.bin": SMALL };
      const next = await publishTree(1, tree);
      await expectPayload(tree);
      await expectCommitted(next);
    });

    it("a signed publish commits as signed, the signer given the committed bytes; an unsigned publish after it does not", async () => {
      const tree = { "a.txt": Buffer.from("a\n") };
      await stage(store, tree);
      const next = manifestOf(1, tree);
      const signed: Buffer[] = [];
      const sign = (bytes: Buffer): string => {
        signed.push(Buffer.from(bytes));
        return "untrusted comment: conformance\nnot a real signature\n";
      };
      await store.publish(next, { keepGenerations: 1, sign });
      const committed = await store.readCommitted();
      expect(committed?.signed).toBe(true);
      expect(signed).toHaveLength(1);
      expect((signed[0] as Buffer).equals(committed?.bytes as Buffer)).toBe(true);
      await store.publish(manifestOf(2, tree), { keepGenerations: 1 });
      expect((await store.readCommitted())?.signed).toBe(false);
    });

    it("publish of a folder with 3,100 entries", async () => {
      const tree: Record<string, Buffer> = {};
      for (let i = 0; i < 3_100; i += 1) tree[`many/f${String(i).padStart(5, "0")}.dat`] = Buffer.from(`${i}\n`);
      tree["beside.txt"] = Buffer.from("beside\n");
      const next = await publishTree(1, tree);
      await expectPayload(tree);
      await expectCommitted(next);
    });

    it("a second publish adds, updates and removes files: removed ones are gone, replaced ones have their new bytes", async () => {
      const v1 = { "keep.txt": Buffer.from("keep\n"), "update.txt": Buffer.from("old\n"), "gone.txt": Buffer.from("bye\n"), "gone dir/deep/x.txt": Buffer.from("x\n") };
      await publishTree(1, v1);
      const v2 = { "keep.txt": Buffer.from("keep\n"), "update.txt": Buffer.from("new, and longer\n"), "added/new.txt": Buffer.from("hello\n") };
      const next = await publishTree(2, v2);
      await expectPayload(v2);
      await expectCommitted(next);
    });

    it("the replaced manifest becomes a generation: generations() lists it, readGeneration returns it as it was", async () => {
      const v1 = await publishTree(1, { "a.txt": Buffer.from("one\n"), "b.txt": Buffer.from("two\n") });
      await publishTree(2, { "a.txt": Buffer.from("ONE\n") });
      expect(await store.generations()).toEqual([1]);
      expect(await store.readGeneration(1)).toEqual(v1);
      // A version never committed is not retained. (Whether the committed version itself is a
      // "retained previous manifest" the contract does not say: the endpoint store returns it.)
      await expect(store.readGeneration(99)).rejects.toBeInstanceOf(NotFoundError);
      const v3 = manifestOf(3, { "a.txt": Buffer.from("ONE\n") });
      await store.publish(v3, { keepGenerations: 3 });
      expect(await store.generations()).toEqual([2, 1]);
    });

    it("content a publish replaced or removed stays held (hasObject) while its generation is retained", async () => {
      const old = Buffer.from("old content\n");
      const removed = Buffer.from("removed content\n");
      await publishTree(1, { "update.txt": old, "gone.txt": removed });
      await publishTree(2, { "update.txt": Buffer.from("new content\n") });
      expect(await store.hasObject(sha(old), old.length)).toBe(true);
      expect(await store.hasObject(sha(removed), removed.length)).toBe(true);
    });

    it("republishing a retained generation under a new version brings back its exact bytes without any receive", async () => {
      const v1tree = { "a.txt": Buffer.from("one\n"), "b/c.txt": Buffer.from("two\n"), "same.txt": Buffer.from("same\n") };
      await publishTree(1, v1tree);
      await publishTree(2, { "a.txt": Buffer.from("ONE\n"), "same.txt": Buffer.from("same\n"), "z.txt": Buffer.from("zed\n") });
      const generation = await store.readGeneration(1);
      const next: Manifest = { ...generation, version: 3, created: formatTimestamp(new Date()) };
      await store.publish(next, { keepGenerations: 3 });
      await expectPayload(v1tree);
      await expectCommitted(next);
      expect(await store.generations()).toEqual([2, 1]);
    });

    it("keepGenerations prunes: keep 1 after three publishes retains only the newest previous; keep 0 retains none", async () => {
      await publishTree(1, { "a.txt": Buffer.from("1\n") }, 1);
      await publishTree(2, { "a.txt": Buffer.from("2\n") }, 1);
      await publishTree(3, { "a.txt": Buffer.from("3\n") }, 1);
      expect(await store.generations()).toEqual([2]);
      expect((await store.readGeneration(2)).files).toEqual(manifestOf(2, { "a.txt": Buffer.from("2\n") }).files);
      await expect(store.readGeneration(1)).rejects.toBeInstanceOf(NotFoundError);
      await publishTree(4, { "a.txt": Buffer.from("4\n") }, 0);
      expect(await store.generations()).toEqual([]);
      await expect(store.readGeneration(3)).rejects.toBeInstanceOf(NotFoundError);
      await expectPayload({ "a.txt": Buffer.from("4\n") });
    });

    it("publish takes content already committed under another path (copied, then moved) without a receive", async () => {
      const content = Buffer.from("content that only moves\n");
      await publishTree(1, { "a.bin": content, "x.txt": Buffer.from("x\n") });
      const copied = manifestOf(2, { "a.bin": content, "copy/a.bin": content, "x.txt": Buffer.from("x\n") });
      await store.publish(copied, { keepGenerations: 1 });
      await expectPayload({ "a.bin": content, "copy/a.bin": content, "x.txt": Buffer.from("x\n") });
      await expectCommitted(copied);
      const moved = manifestOf(3, { "moved/b.bin": content, "x.txt": Buffer.from("x\n") });
      await store.publish(moved, { keepGenerations: 1 });
      await expectPayload({ "moved/b.bin": content, "x.txt": Buffer.from("x\n") });
      await expectCommitted(moved);
    });

    it("publish naming content that was never staged fails with NotFoundError and changes nothing", async () => {
      const v1tree = { "keep.txt": Buffer.from("keep\n"), "update.txt": Buffer.from("old\n"), "gone.txt": Buffer.from("bye\n") };
      const v1 = await publishTree(1, v1tree);
      // Everything of version 2 is staged except one file's content.
      const staged = { "update.txt": Buffer.from("new\n"), "added.txt": Buffer.from("added\n") };
      await stage(store, staged);
      const bad = manifestOf(2, { "keep.txt": Buffer.from("keep\n"), ...staged, "never.txt": Buffer.from("never staged\n") });
      await expect(store.publish(bad, { keepGenerations: 1 })).rejects.toBeInstanceOf(NotFoundError);
      await expectCommitted(v1);
      await expectPayload(v1tree);
      expect(await store.generations()).toEqual([]);
      expect(await store.recover()).toBeUndefined();
      await expectCommitted(v1);
    });

    it("close(), where the kind has one, is idempotent", async () => {
      await store.close?.();
      await store.close?.();
    });

    it("recover() after a completed publish has nothing to finish", async () => {
      const next = await publishTree(1, { "a.txt": Buffer.from("a\n") });
      expect(await store.recover()).toBeUndefined();
      await expectCommitted(next);
      await expectPayload({ "a.txt": Buffer.from("a\n") });
    });
  });
}
