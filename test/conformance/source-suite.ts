// The Source contract (src/core/source.ts) as one suite, written once and run against every kind; differences between kinds are options with a reason.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotFoundError, SourceError, UpdateMirrorError } from "../../src/core/errors.js";
import type { Manifest } from "../../src/core/manifest.js";
import type { OpenedFile, Source, UpstreamManifest } from "../../src/core/source.js";
import { verifyDetached } from "../../src/crypto/minisign.js";
import { makeKeyPair, makeUpstream } from "../servers/vendor-server.js";

/** A source over a published tree, and what the test may do to its transport. */
export interface SourceUnderTest {
  source: Source;
  /** Makes the next transfer of `path` stop half-way (present where the transport can be faulted). */
  cutNextBody?: (path: string) => void;
  close(): Promise<void>;
}

/** A difference of one kind from the full contract, with the reason it is not a defect. */
export type Capability = true | { unsupported: string };

export interface SourceSuiteOptions {
  /** The kind declares `rangeReads` and honours `offset`. */
  rangeReads: boolean;
  /** `list()` enumerates the tree; otherwise it must refuse with SourceError (a declared limitation, tested as such). */
  list: Capability;
  /** `open()` returns a validator and, given a stale `ifRange`, starts over at 0 with the whole file. */
  ifRange: Capability;
  /** `open()` refuses a body longer than `expectedSize` with an error instead of passing it on. */
  capsAtExpectedSize: Capability;
  /** The test can cut a transfer half-way (SourceUnderTest.cutNextBody) to check that the body then errors. */
  cutBody: Capability;
  /** A commit at the published root after the source was opened shows at the next probe. */
  seesNewCommits: Capability;
}

/** Awkward names every kind must carry: spaces, '#', '%', quotes, brackets, non-ASCII, a long name, deep folders, empty and large files. */
export const CONFORMANCE_TREE: Readonly<Record<string, Buffer>> = {
  "plain.txt": Buffer.from("plain\n"),
  "dir with space/file name.txt": Buffer.from("spaces\n"),
  "odd/hash#mark.txt": Buffer.from("hash\n"),
  "odd/100% sure (really).txt": Buffer.from("percent\n"),
  "odd/%2e%2e": Buffer.from("a literal name that decodes to '..'\n"),
  "odd/a+b=c&d;e,f'g~!$@.txt": Buffer.from("reserved characters\n"),
  "odd/[brackets]{braces}^`.txt": Buffer.from("brackets\n"),
  "ünïcödé/日本語 テキスト.txt": Buffer.from("non-ascii\n"),
  [`long/${"l".repeat(200)}.bin`]: Buffer.from("long name\n"),
  "deep/a/b/c/d/e/f/g/h.txt": Buffer.from("deep\n"),
  "empty.dat": Buffer.alloc(0),
  // Several chunks for every kind (1 MiB reads on folders), so a cut or an abort lands mid-body.
  "big.bin": randomBytes(3 * 1024 * 1024 + 17),
};

const BIG = "big.bin";

async function drain(opened: OpenedFile): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of opened.body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function why(capability: Capability): string {
  return capability === true ? "" : ` (${capability.unsupported})`;
}

/**
 * Declares the suite for one kind. `factory(root)` gets a folder already published with `index`
 * (signed; CONFORMANCE_TREE) and returns a source over it. Parts a kind does not support are not
 * generated as tests at all; what it does instead (refusing with SourceError, ignoring a hint) is.
 */
export function describeSourceConformance(name: string, factory: (root: string) => Promise<SourceUnderTest>, options: SourceSuiteOptions): void {
  describe(`Source conformance: ${name}`, () => {
    let dir: string;
    let root: string;
    let sut: SourceUnderTest;
    let source: Source;
    let manifest: Manifest;
    let publicKey: Awaited<ReturnType<typeof makeKeyPair>>["publicKey"];
    let secretKey: Awaited<ReturnType<typeof makeKeyPair>>["secretKey"];

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "um-conformance-"));
      root = join(dir, "published");
      ({ publicKey, secretKey } = await makeKeyPair(join(dir, "key")));
      manifest = (await makeUpstream(root, CONFORMANCE_TREE, { signingKey: secretKey })).manifest;
      sut = await factory(root);
      source = sut.source;
    });
    afterAll(async () => {
      await sut?.close();
      await rm(dir, { recursive: true, force: true });
    });

    async function probe(): Promise<UpstreamManifest> {
      const result = await source.probeManifest(undefined, { signature: true });
      if (result.kind !== "manifest") throw new Error(`expected a manifest, got ${result.kind}`);
      return result.upstream;
    }

    it("labels itself without credentials and declares its abilities as data", () => {
      expect(source.label).not.toMatch(/:[^/@]*@/);
      expect(source.capabilities.rangeReads).toBe(options.rangeReads);
      expect(source.capabilities.mtimePrecisionMs).toBeGreaterThan(0);
    });

    it("probeManifest returns the published manifest, its exact bytes, a validator and the signature", async () => {
      const upstream = await probe();
      expect(upstream.manifest).toEqual(manifest);
      expect(upstream.bytes.equals(await readFile(join(root, ".update-mirror/manifest.json")))).toBe(true);
      expect(upstream.validator).toBeDefined();
      expect(upstream.signature).toBeDefined();
      expect(() => verifyDetached(upstream.bytes, upstream.signature as string, publicKey, name)).not.toThrow();
    });

    it("probeManifest without signature: true fetches no signature", async () => {
      const result = await source.probeManifest(undefined);
      expect(result.kind).toBe("manifest");
      if (result.kind === "manifest") expect(result.upstream.signature).toBeUndefined();
    });

    it("probeManifest with the last validator reports the manifest unchanged", async () => {
      const { validator } = await probe();
      expect(await source.probeManifest(validator)).toEqual({ kind: "unchanged" });
    });

    it("open() streams every file byte for byte from offset 0, with its size", async () => {
      for (const [path, content] of Object.entries(CONFORMANCE_TREE)) {
        const opened = await source.open(path, { expectedSize: content.length });
        expect(opened.offset, path).toBe(0);
        if (opened.size !== undefined) expect(opened.size, path).toBe(content.length);
        expect((await drain(opened)).equals(content), path).toBe(true);
      }
    });

    it("open() of a missing path fails with NotFoundError, before any body", async () => {
      for (const path of ["missing.txt", "odd/missing #1.txt", "ünïcödé/nope.txt", "no/such/folder/x.bin"]) {
        await expect(source.open(path), path).rejects.toBeInstanceOf(NotFoundError);
      }
    });

    it("a zero-length file opens to an empty body", async () => {
      const opened = await source.open("empty.dat", { expectedSize: 0 });
      expect((await drain(opened)).length).toBe(0);
    });

    if (options.rangeReads) {
      it("open() with an offset starts there", async () => {
        const content = CONFORMANCE_TREE[BIG] as Buffer;
        for (const offset of [1, 1000, content.length - 1]) {
          const opened = await source.open(BIG, { offset, expectedSize: content.length });
          expect(opened.offset).toBe(offset);
          expect((await drain(opened)).equals(content.subarray(offset))).toBe(true);
        }
      });
    }

    if (options.ifRange === true) {
      it("open() gives a validator; a resume guarded by it continues, a stale one starts over at 0", async () => {
        const content = CONFORMANCE_TREE[BIG] as Buffer;
        const first = await source.open(BIG);
        await drain(first);
        expect(first.validator).toBeDefined();
        const resumed = await source.open(BIG, { offset: 4096, ifRange: first.validator as string, expectedSize: content.length });
        expect(resumed.offset).toBe(4096);
        expect((await drain(resumed)).equals(content.subarray(4096))).toBe(true);
        const restarted = await source.open(BIG, { offset: 4096, ifRange: '"a-version-long-gone"', expectedSize: content.length });
        expect(restarted.offset).toBe(0);
        expect((await drain(restarted)).equals(content)).toBe(true);
      });
    } else {
      it(`open() resumes at the offset whatever ifRange says${why(options.ifRange)}`, async () => {
        const content = CONFORMANCE_TREE[BIG] as Buffer;
        const resumed = await source.open(BIG, { offset: 4096, ifRange: '"a-version-long-gone"' });
        expect(resumed.offset).toBe(4096);
        expect((await drain(resumed)).equals(content.subarray(4096))).toBe(true);
      });
    }

    if (options.capsAtExpectedSize === true) {
      it("open() refuses a body longer than expectedSize with an error", async () => {
        const content = CONFORMANCE_TREE[BIG] as Buffer;
        const opened = await source.open(BIG, { expectedSize: content.length - 1 });
        await expect(drain(opened)).rejects.toBeInstanceOf(UpdateMirrorError);
      });
    }

    it("a body aborted by its signal errors instead of ending quietly", async () => {
      const content = CONFORMANCE_TREE[BIG] as Buffer;
      const controller = new AbortController();
      const opened = await source.open(BIG, { signal: controller.signal, expectedSize: content.length });
      let received = 0;
      const reading = (async () => {
        for await (const chunk of opened.body) {
          received += chunk.length;
          controller.abort();
        }
      })();
      await expect(reading).rejects.toThrow();
      expect(received).toBeLessThan(content.length);
      const already = new AbortController();
      already.abort();
      await expect(source.open(BIG, { signal: already.signal }).then(drain)).rejects.toThrow();
    });

    if (options.cutBody === true) {
      it("a transfer cut mid-body errors instead of ending quietly", async () => {
        const content = CONFORMANCE_TREE[BIG] as Buffer;
        if (sut.cutNextBody === undefined) throw new Error("options.cutBody is set but the factory gave no cutNextBody");
        sut.cutNextBody(BIG);
        const opened = await source.open(BIG, { expectedSize: content.length });
        let received = 0;
        const reading = (async () => {
          for await (const chunk of opened.body) received += chunk.length;
        })();
        await expect(reading).rejects.toThrow();
        expect(received).toBeLessThan(content.length);
      });
    }

    if (options.list === true) {
      it("list() enumerates every payload file with its size, and nothing of .update-mirror/", async () => {
        const entries = await source.list();
        const listed = Object.fromEntries(entries.map((e) => [e.path, e.size]));
        expect(listed).toEqual(Object.fromEntries(Object.entries(CONFORMANCE_TREE).map(([p, c]) => [p, c.length])));
      });
    } else {
      it(`list() refuses with SourceError${why(options.list)}`, async () => {
        await expect(source.list()).rejects.toBeInstanceOf(SourceError);
      });
    }

    // Last, since it changes the published tree.
    if (options.seesNewCommits === true) {
      it("after a new commit, the old validator fetches the new manifest", async () => {
        const { validator } = await probe();
        const next = await makeUpstream(root, { "added later.txt": Buffer.from("new\n") }, { signingKey: secretKey });
        // A server may take a moment to notice the commit; the contract is only that it gets there.
        const deadline = Date.now() + 10_000;
        let result = await source.probeManifest(validator);
        while (result.kind === "unchanged" && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          result = await source.probeManifest(validator);
        }
        expect(result.kind).toBe("manifest");
        if (result.kind === "manifest") expect(result.upstream.manifest).toEqual(next.manifest);
      });
    } else {
      it(`keeps serving what it was opened on after a new commit${why(options.seesNewCommits)}`, async () => {
        const before = await probe();
        await makeUpstream(root, { "added later.txt": Buffer.from("new\n") }, { signingKey: secretKey });
        expect((await probe()).bytes).toEqual(before.bytes);
        await expect(source.open("added later.txt")).rejects.toBeInstanceOf(NotFoundError);
      });
    }

    it("close() is idempotent", async () => {
      await source.close();
      await source.close();
    });
  });
}
