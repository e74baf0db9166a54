// The sync engine against a fake vendor over real HTTP: validators, deltas, every fault with and without failover, trust and safety limits.
import { createHash, randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { IntegrityError, RefusedPlanError, SignatureError, SourceError, type UpdateMirrorError } from "../../src/core/errors.js";
import type { Store } from "../../src/core/store.js";
import type { PublicKey } from "../../src/crypto/minisign.js";
import type { EngineEvent, RunSummary } from "../../src/engine/events.js";
import { SELECT_ALL } from "../../src/engine/select.js";
import { runSync, type SyncOptions } from "../../src/engine/sync.js";
import { commitMirrorMetadata, manifestSigner, readMirrorManifest } from "../../src/mirror/metadata.js";
import { verifyTree } from "../../src/mirror/verify-tree.js";
import { DEFAULT_HTTP_OPTIONS, type HttpOptions } from "../../src/net/http-options.js";
import { openSources } from "../../src/sources/registry.js";
import { createFolderStore } from "../../src/stores/folder.js";
import { DEFAULT_RETRY } from "../../src/wrap/retry.js";
import { type Fault, makeKeyPair, makeUpstream, startVendorServer, type VendorServer } from "../servers/vendor-server.js";

// The file faults are injected on: big enough that "half" and a resume are meaningful.
const FAULTY = "kes/win-x64/bases/daily.cvd";
const FAULTY_SIZE = 96 * 1024;
const MANIFEST_PATH = ".update-mirror/manifest.json";
const SIGNATURE_PATH = ".update-mirror/manifest.json.minisig";

const TREE: Readonly<Record<string, string | Buffer>> = {
  [FAULTY]: randomBytes(FAULTY_SIZE),
  "kes/win-x64/bases/main-en.cvd": "main database\n",
  "kes/linux/module.bin": randomBytes(20_000),
  "kes/linux/readme.txt": "linux build\n",
  "clamav/bytecode.cvd": "bytecode\n",
  "docs/read me #1 (100%).txt": "awkward name\n",
  "ünïcödé/日本語.txt": "non-ascii\n",
  "empty.dat": "",
};

// Indexing spawns a hash worker (slow under tsx), so the base upstream is indexed once and copied into each test.
let template: Promise<{ dir: string; root: string }> | undefined;
function indexedTemplate(): Promise<{ dir: string; root: string }> {
  template ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "um-sync-http-template-"));
    const root = join(dir, "upstream");
    await makeUpstream(root, TREE);
    return { dir, root };
  })();
  return template;
}
afterAll(async () => {
  if (template) await rm((await template).dir, { recursive: true, force: true });
});

// Proxies from the environment must not capture requests to 127.0.0.1.
const HTTP: HttpOptions = { ...DEFAULT_HTTP_OPTIONS, useEnvProxy: false, connectTimeoutMs: 5_000, headersTimeoutMs: 5_000, idleTimeoutMs: 10_000 };
// undici's timers are coarse: a 1 s idle timeout fires after one to two seconds.
const STALL_HTTP: Partial<HttpOptions> = { idleTimeoutMs: 1_000 };

type RunOptions = Partial<Omit<SyncOptions, "sources" | "emit" | "retry">> & { http?: Partial<HttpOptions> };
type Events = { [T in EngineEvent["type"]]: Extract<EngineEvent, { type: T }> };

/** One test's world: a scratch folder with an upstream and a mirror, servers closed and the folder removed when the test ends. */
interface Harness {
  dir: string;
  upstream: string;
  mirror: string;
  store: Store;
  /** The files of the base upstream. */
  tree: Readonly<Record<string, string | Buffer>>;
  /** Makes `root` (default: `upstream`) a copy of the base upstream, indexed at version 1. */
  seed(root?: string): Promise<void>;
  /** Delays the injected sleep was asked for, across the test. */
  sleeps: number[];
  serve(root: string): Promise<VendorServer>;
  /** One engine run from `specs` (URLs or folders) into `store` (or `options.store`). */
  sync(specs: string[], options?: RunOptions): Promise<RunSummary>;
  /** A run that must fail; returns its error. */
  syncFails(specs: string[], options?: RunOptions): Promise<UpdateMirrorError>;
  /** The last run's events of one type. */
  ofType<T extends EngineEvent["type"]>(type: T): Events[T][];
  /** verifyTree finds the mirror clean. */
  expectClean(root?: string): Promise<void>;
  /** Every file the mirror's manifest lists, with its content. */
  mirrorFiles(root?: string): Promise<Record<string, Buffer>>;
  committedVersion(): Promise<number | undefined>;
}

async function harness(onTestFinished: (fn: () => Promise<void>) => void): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), "um-sync-http-"));
  const mirror = join(dir, "mirror");
  const store = createFolderStore(mirror);
  const servers: VendorServer[] = [];
  const sleeps: number[] = [];
  let events: EngineEvent[] = [];
  onTestFinished(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  });

  async function sync(specs: string[], options: RunOptions = {}): Promise<RunSummary> {
    const { http, ...rest } = options;
    const opened = openSources(specs, { ...HTTP, ...http });
    events = [];
    try {
      return await runSync({
        sources: opened.sources,
        store,
        selection: SELECT_ALL,
        tagRules: [],
        trust: { keys: [], allowRollback: false, allowExpired: false },
        dryRun: false,
        concurrency: 4,
        retry: {
          ...DEFAULT_RETRY,
          sleep: async (ms) => {
            sleeps.push(ms);
          },
          random: () => 0.5,
        },
        maxDelete: { percent: 50 },
        keepGenerations: 2,
        emit: (e) => events.push(e),
        ...rest,
      });
    } finally {
      await opened.close();
    }
  }

  async function mirrorFiles(root = mirror): Promise<Record<string, Buffer>> {
    const out: Record<string, Buffer> = {};
    const loaded = await readMirrorManifest(root);
    for (const f of loaded?.manifest.files ?? []) out[f.path] = await readFile(join(root, ...f.path.split("/")));
    return out;
  }

  return {
    dir,
    upstream: join(dir, "upstream"),
    mirror,
    store,
    tree: TREE,
    async seed(root = join(dir, "upstream")) {
      await cp((await indexedTemplate()).root, root, { recursive: true });
    },
    sleeps,
    async serve(root) {
      const server = await startVendorServer(root);
      servers.push(server);
      return server;
    },
    sync,
    async syncFails(specs, options = {}) {
      const err = await sync(specs, options).then(
        () => undefined,
        (e: unknown) => e as UpdateMirrorError,
      );
      if (err === undefined) throw new Error("the sync was expected to fail, but it succeeded");
      return err;
    },
    ofType<T extends EngineEvent["type"]>(type: T): Events[T][] {
      return events.filter((e): e is Events[T] => e.type === type);
    },
    async expectClean(root = mirror) {
      const report = await verifyTree(root, { workers: 1 });
      expect({ missing: report.missing, corrupt: report.corrupt, unlisted: report.unlisted, sums: report.sums }).toEqual({ missing: [], corrupt: [], unlisted: [], sums: [] });
      expect(report.ok).toBe(true);
    },
    mirrorFiles,
    async committedVersion() {
      return (await store.readCommitted())?.manifest.version;
    },
  };
}

function asBuffers(tree: Record<string, string | Buffer>): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, Buffer.from(v)]));
}

function requestsFor(server: VendorServer, path: string) {
  return server.requests.filter((r) => r.path === path);
}

describe("vendor server", () => {
  it("serves files with validators, ranges and 304, and refuses paths leaving the root", async ({ onTestFinished }) => {
    const { seed, upstream, serve } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    const url = `${server.url}docs/read%20me%20%231%20(100%25).txt`;
    const full = await fetch(url);
    expect(full.status).toBe(200);
    expect(await full.text()).toBe("awkward name\n");
    const etag = full.headers.get("etag");
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    expect(full.headers.get("last-modified")).not.toBeNull();
    expect(full.headers.get("content-length")).toBe("13");
    expect((await fetch(url, { headers: { "if-none-match": etag ?? "" } })).status).toBe(304);
    const part = await fetch(url, { headers: { range: "bytes=8-" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe("bytes 8-12/13");
    expect(await part.text()).toBe("name\n");
    expect(await (await fetch(url, { headers: { range: "bytes=2-4" } })).text()).toBe("kwa");
    expect((await fetch(url, { headers: { range: "bytes=13-" } })).status).toBe(416);
    expect((await fetch(`${server.url}${MANIFEST_PATH}`)).status).toBe(200);
    expect((await fetch(`${server.url}nothing-here`)).status).toBe(404);
    // fetch() would normalise the '..' away, so the raw request line is sent by hand.
    const escaped = await new Promise<number>((resolve, reject) => {
      httpRequest(`${server.url}x`, { path: "/../../etc/passwd" }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on("error", reject)
        .end();
    });
    expect(escaped).toBe(400);
    expect(server.requests.map((r) => r.path)).toContain("docs/read me #1 (100%).txt");
  });
});

// Concurrent: most of the wall time is spent waiting (hash worker start-up, idle timeouts), not computing.
describe.concurrent("sync over HTTP", () => {
  it("copies everything, then a no-op run makes one conditional request answered 304", async ({ onTestFinished }) => {
    const { seed, upstream, tree, serve, sync, ofType, expectClean, mirrorFiles, committedVersion } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    const first = await sync([server.url]);
    expect(first.result).toBe("updated");
    expect(first.added).toBe(Object.keys(tree).length);
    expect(await mirrorFiles()).toEqual(asBuffers(tree));
    await expectClean();

    const manifestEtag = (await fetch(`${server.url}${MANIFEST_PATH}`)).headers.get("etag");
    server.requests.length = 0;
    const second = await sync([server.url]);
    expect(second.result).toBe("unchanged");
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]?.method).toBe("GET");
    expect(server.requests[0]?.path).toBe(MANIFEST_PATH);
    expect(server.requests[0]?.headers["if-none-match"]).toBe(manifestEtag);
    expect(ofType("source:probe")).toEqual([expect.objectContaining({ source: server.url, result: "unchanged" })]);
    expect(await committedVersion()).toBe(first.version);
    await expectClean();
  });

  it("fetches only the delta, removes what upstream removed and retains the previous version", async ({ onTestFinished }) => {
    const { seed, upstream, mirror, tree, store, serve, sync, expectClean, mirrorFiles } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    const first = await sync([server.url]);
    await expectClean();
    server.requests.length = 0;

    const changed = { "kes/linux/module.bin": randomBytes(21_000), "clamav/bytecode.cvd": "bytecode v2\n", "kes/new/added.bin": "new file\n" };
    await makeUpstream(upstream, changed, { remove: ["kes/linux/readme.txt"] });
    const second = await sync([server.url]);
    expect(second).toMatchObject({ result: "updated", added: 1, updated: 2, removed: 1, previousVersion: first.version });
    expect(server.requests.map((r) => r.path).sort()).toEqual([MANIFEST_PATH, "clamav/bytecode.cvd", "kes/linux/module.bin", "kes/new/added.bin"].sort());
    const expected = Object.fromEntries(Object.entries({ ...tree, ...changed }).filter(([p]) => p !== "kes/linux/readme.txt"));
    expect(await mirrorFiles()).toEqual(asBuffers(expected));
    await expect(readFile(join(mirror, "kes/linux/readme.txt"))).rejects.toMatchObject({ code: "ENOENT" });
    expect(await store.generations()).toContain(first.version);
    const previous = await store.readGeneration(first.version ?? 0);
    expect(previous.files.map((f) => f.path)).toContain("kes/linux/readme.txt");
    await expectClean();
  });

  const FAULTS: { name: string; fault: Fault; error: new (...args: never[]) => UpdateMirrorError; http?: Partial<HttpOptions> }[] = [
    { name: "reset", fault: { kind: "reset" }, error: SourceError },
    { name: "500", fault: { kind: "status", code: 500 }, error: SourceError },
    { name: "404", fault: { kind: "status", code: 404 }, error: SourceError },
    { name: "403 HTML page", fault: { kind: "status", code: 403 }, error: SourceError },
    { name: "truncate", fault: { kind: "truncate" }, error: SourceError },
    { name: "longer", fault: { kind: "longer" }, error: IntegrityError },
    { name: "wrongBytes", fault: { kind: "wrongBytes" }, error: IntegrityError },
    { name: "stall", fault: { kind: "stall" }, error: SourceError, http: STALL_HTTP },
  ];

  describe.each(FAULTS)("fault $name", ({ fault, error, http }) => {
    it("fails over to the second source and publishes only good bytes", async ({ onTestFinished }) => {
      const { seed, upstream, tree, serve, sync, ofType, expectClean, mirrorFiles } = await harness(onTestFinished);
      await seed();
      const server = await serve(upstream);
      server.setFault(FAULTY, fault);
      const summary = await sync([server.url, upstream], http ? { http } : {});
      expect(summary.result).toBe("updated");
      expect(summary.source).toBe(server.url);
      expect(ofType("file:failover")).toEqual([expect.objectContaining({ path: FAULTY, from: server.url })]);
      expect(ofType("file:done").find((e) => e.path === FAULTY)?.source).toBe(upstream);
      expect(requestsFor(server, FAULTY).length).toBeGreaterThan(0);
      expect(await mirrorFiles()).toEqual(asBuffers(tree));
      await expectClean();
    });

    it("with no second source: rejects and publishes nothing", async ({ onTestFinished }) => {
      const { seed, upstream, tree, serve, sync, syncFails, ofType, expectClean, mirrorFiles, committedVersion } = await harness(onTestFinished);
      await seed();
      const server = await serve(upstream);
      const first = await sync([server.url]);
      const old = await mirrorFiles();
      await expectClean();

      const next = { ...tree, [FAULTY]: randomBytes(80 * 1024), "clamav/bytecode.cvd": "bytecode v2\n" };
      await makeUpstream(upstream, next);
      server.setFault(FAULTY, fault);
      const err = await syncFails([server.url], http ? { http } : {});
      expect(err).toBeInstanceOf(error);
      expect(ofType("file:failed").map((e) => e.path)).toEqual([FAULTY]);
      expect(ofType("publish:start")).toEqual([]);
      expect(await committedVersion()).toBe(first.version);
      expect(await mirrorFiles()).toEqual(old);
      await expectClean();

      // Once the server behaves, the next run completes (resuming whatever was staged).
      server.setFault(FAULTY, undefined);
      expect((await sync([server.url])).result).toBe("updated");
      expect(await mirrorFiles()).toEqual(asBuffers(next));
      await expectClean();
    });
  });

  it("fetches content shared by several paths once and publishes every path", async ({ onTestFinished }) => {
    const { seed, upstream, tree, serve, sync, ofType, expectClean, mirrorFiles } = await harness(onTestFinished);
    await seed();
    const copies = { "copies/one.cvd": tree[FAULTY] ?? "", "copies/two.cvd": tree[FAULTY] ?? "", "copies/empty.dat": "" };
    await makeUpstream(upstream, copies);
    const server = await serve(upstream);
    const summary = await sync([server.url]);
    expect(summary).toMatchObject({ result: "updated", added: Object.keys(tree).length + 3 });
    const same = [FAULTY, "copies/one.cvd", "copies/two.cvd"];
    expect(server.requests.filter((r) => same.includes(r.path))).toHaveLength(1);
    expect(ofType("file:done").filter((e) => same.includes(e.path) && e.reused)).toHaveLength(2);
    expect(await mirrorFiles()).toEqual(asBuffers({ ...tree, ...copies }));
    await expectClean();
  });

  it("places content the mirror already publishes under another path (moved or copied upstream) without downloading it", async ({ onTestFinished }) => {
    const { seed, upstream, tree, serve, sync, ofType, expectClean, mirrorFiles } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    await sync([server.url]);
    server.requests.length = 0;
    // The big file moves to a new name and gets a copy; the old name goes.
    const moved = { "moved/daily.cvd": tree[FAULTY] ?? "", "moved/copy.cvd": tree[FAULTY] ?? "" };
    await makeUpstream(upstream, moved, { remove: [FAULTY] });
    const summary = await sync([server.url]);
    expect(summary).toMatchObject({ result: "updated", added: 2, removed: 1 });
    expect(server.requests.map((r) => r.path)).toEqual([MANIFEST_PATH]);
    expect(ofType("file:done").filter((e) => e.reused).map((e) => e.path).sort()).toEqual(["moved/copy.cvd", "moved/daily.cvd"]);
    const expected = Object.fromEntries(Object.entries({ ...tree, ...moved }).filter(([p]) => p !== FAULTY));
    expect(await mirrorFiles()).toEqual(asBuffers(expected));
    await expectClean();
  });

  it("never stores a 403 HTML page as the file", async ({ onTestFinished }) => {
    const { seed, upstream, mirror, store, serve, syncFails } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    server.setFault(FAULTY, { kind: "status", code: 403 });
    await syncFails([server.url]);
    expect(await store.readCommitted()).toBeUndefined();
    await expect(readFile(join(mirror, FAULTY))).rejects.toMatchObject({ code: "ENOENT" });
    // Nothing anywhere under the mirror, staging included, holds the page.
    const held = await readdir(mirror, { recursive: true, withFileTypes: true });
    for (const entry of held.filter((e) => e.isFile())) {
      expect((await readFile(join(entry.parentPath, entry.name))).includes("Forbidden")).toBe(false);
    }
  });

  it("resumes a truncated transfer with a Range request", async ({ onTestFinished }) => {
    const { seed, upstream, tree, serve, sync, ofType, expectClean, mirrorFiles } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    server.setFault(FAULTY, { kind: "truncate", times: 1 });
    const summary = await sync([server.url]);
    expect(summary.result).toBe("updated");
    const asked = requestsFor(server, FAULTY);
    expect(asked).toHaveLength(2);
    expect(asked[0]?.headers.range).toBeUndefined();
    expect(asked[1]?.headers.range).toBe(`bytes=${FAULTY_SIZE / 2}-`);
    expect(ofType("file:start").filter((e) => e.path === FAULTY).map((e) => e.offset)).toEqual([0, FAULTY_SIZE / 2]);
    expect(ofType("file:retry")).toEqual([expect.objectContaining({ path: FAULTY, source: server.url })]);
    expect(ofType("file:failover")).toEqual([]);
    expect(await mirrorFiles()).toEqual(asBuffers(tree));
    await expectClean();
  });

  it("guards a resume with If-Range, and the source starts over when the file changed", async ({ onTestFinished }) => {
    const { seed, upstream, tree, serve, sync } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    server.setFault(FAULTY, { kind: "truncate", times: 1 });
    expect((await sync([server.url])).result).toBe("updated");
    const asked = requestsFor(server, FAULTY);
    const etag = `"${createHash("sha256").update(tree[FAULTY] as Buffer).digest("hex")}"`;
    expect(asked[1]?.headers["if-range"]).toBe(etag);

    // A validator that no longer names the file: the server sends it whole, and the source says so.
    const opened = openSources([server.url], HTTP);
    try {
      const file = await opened.sources[0]?.open(FAULTY, { offset: 1000, ifRange: '"an older version"', expectedSize: FAULTY_SIZE });
      expect(file?.offset).toBe(0);
      let bytes = 0;
      for await (const chunk of file?.body ?? []) bytes += chunk.length;
      expect(bytes).toBe(FAULTY_SIZE);
    } finally {
      await opened.close();
    }
  });

  it("stays correct when the server ignores Range for a partial download", async ({ onTestFinished }) => {
    const { seed, upstream, tree, serve, sync, syncFails, ofType, expectClean, mirrorFiles } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    server.setFault(FAULTY, { kind: "truncate" });
    await syncFails([server.url]);
    server.requests.length = 0;
    server.setFault(FAULTY, { kind: "ignoreRange" });
    const summary = await sync([server.url]);
    expect(summary.result).toBe("updated");
    const asked = requestsFor(server, FAULTY);
    expect(asked).toHaveLength(1);
    expect(asked[0]?.headers.range).toMatch(/^bytes=\d+-$/);
    expect(ofType("file:start").find((e) => e.path === FAULTY)?.offset).toBe(0);
    expect(await mirrorFiles()).toEqual(asBuffers(tree));
    await expectClean();
  });

  it("starts over from byte 0 when a resumed partial turns out wrong, on the same source", async ({ onTestFinished }) => {
    const { seed, upstream, tree, mirror, serve, sync, ofType, expectClean, mirrorFiles } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    // A partial left by another source or an older run, with wrong bytes.
    const sha = createHash("sha256").update(tree[FAULTY] as Buffer).digest("hex");
    await mkdir(join(mirror, ".update-mirror/private/partial"), { recursive: true });
    await writeFile(join(mirror, ".update-mirror/private/partial", sha), Buffer.alloc(FAULTY_SIZE / 2, 0xee));
    expect((await sync([server.url])).result).toBe("updated");
    const starts = ofType("file:start").filter((e) => e.path === FAULTY).map((e) => e.offset);
    expect(starts).toEqual([FAULTY_SIZE / 2, 0]);
    expect(await mirrorFiles()).toEqual(asBuffers(tree));
    await expectClean();
  });

  it("does not take a conditional 'unchanged' from a run with other trust settings", async ({ onTestFinished }) => {
    const { dir, seed, upstream, serve, sync, syncFails } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    expect((await sync([server.url])).result).toBe("updated");
    const key = await makeKeyPair(join(dir, "keys", "k"));
    // The upstream is unsigned: once trust is required, the same unchanged manifest must be refused.
    const err = await syncFails([server.url], { trust: { keys: [key.publicKey], allowRollback: false, allowExpired: false } });
    expect(err).toBeInstanceOf(SignatureError);
  });

  it("keeps a cool-down even when the run then fails for another reason", async ({ onTestFinished }) => {
    const { seed, upstream, store, serve, sync, syncFails } = await harness(onTestFinished);
    await seed();
    const busy = await serve(upstream);
    const good = await serve(upstream);
    expect((await sync([good.url])).result).toBe("updated");
    busy.setFault("*", { kind: "status", code: 503, retryAfter: 3600 });
    await makeUpstream(upstream, {}, { exact: true });
    // The busy source asks for an hour; the good one serves an emptied upstream, which is refused.
    expect(await syncFails([busy.url, good.url])).toBeInstanceOf(RefusedPlanError);
    const until = (await store.readState()).sources[busy.url]?.coolDownUntil;
    expect(until !== undefined && Date.parse(until) > Date.now()).toBe(true);
  });

  it("gets a file sent slowly in small chunks right", async ({ onTestFinished }) => {
    const { seed, upstream, tree, serve, sync, ofType, expectClean, mirrorFiles } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    server.setFault(FAULTY, { kind: "slow", delayMs: 1, chunkBytes: 8192 });
    expect((await sync([server.url])).result).toBe("updated");
    expect(ofType("file:progress").filter((e) => e.path === FAULTY).length).toBeGreaterThan(1);
    expect(await mirrorFiles()).toEqual(asBuffers(tree));
    await expectClean();
  });

  it("cools a source down for a long Retry-After and skips it next run", async ({ onTestFinished }) => {
    const { seed, upstream, store, sleeps, serve, sync, ofType, expectClean } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    server.setFault(FAULTY, { kind: "status", code: 429, retryAfter: 3600 });
    const first = await sync([server.url, upstream]);
    expect(first.result).toBe("updated");
    expect(requestsFor(server, FAULTY)).toHaveLength(1);
    expect(sleeps).toEqual([]);
    expect(ofType("file:failover")).toEqual([expect.objectContaining({ path: FAULTY, from: server.url })]);
    const until = (await store.readState()).sources[server.url]?.coolDownUntil;
    expect(Date.parse(until ?? "")).toBeGreaterThan(Date.now() + 3_000_000);
    await expectClean();

    server.requests.length = 0;
    const second = await sync([server.url, upstream]);
    expect(second.result).toBe("unchanged");
    expect(server.requests).toEqual([]);
    expect(ofType("source:probe")).toContainEqual(expect.objectContaining({ source: server.url, result: "cooling-down" }));
    await expectClean();
  });

  it("remembers a cool-down the manifest request asked for, even when the run fails", async ({ onTestFinished }) => {
    const { seed, upstream, store, serve, syncFails, ofType } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    server.setFault(MANIFEST_PATH, { kind: "status", code: 503, retryAfter: 3600 });
    expect(await syncFails([server.url])).toBeInstanceOf(SourceError);
    expect(Date.parse((await store.readState()).sources[server.url]?.coolDownUntil ?? "")).toBeGreaterThan(Date.now() + 3_000_000);
    server.requests.length = 0;
    expect(await syncFails([server.url])).toBeInstanceOf(SourceError);
    expect(server.requests).toEqual([]);
    expect(ofType("source:probe")).toEqual([expect.objectContaining({ source: server.url, result: "cooling-down" })]);
  });

  it.for([429, 503])("waits out a short Retry-After on %i and retries", async (code, { onTestFinished }) => {
    const { seed, upstream, store, sleeps, serve, sync, ofType, expectClean } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    server.setFault(FAULTY, { kind: "status", code, retryAfter: 1, times: 1 });
    expect((await sync([server.url])).result).toBe("updated");
    expect(sleeps).toEqual([1000]);
    expect(ofType("file:retry")).toEqual([expect.objectContaining({ path: FAULTY, delayMs: 1000 })]);
    expect((await store.readState()).sources[server.url]?.coolDownUntil).toBeUndefined();
    await expectClean();
  });

  it("backs off between retries with the policy's jitter", async ({ onTestFinished }) => {
    const { seed, upstream, sleeps, serve, sync, expectClean } = await harness(onTestFinished);
    await seed();
    const server = await serve(upstream);
    server.setFault(FAULTY, { kind: "status", code: 500, times: 2 });
    expect((await sync([server.url])).result).toBe("updated");
    // random() = 0.5 over ceilings of 500 and 1000 ms.
    expect(sleeps).toEqual([250, 500]);
    await expectClean();
  });

  describe("trust", () => {
    function trusting(keys: { publicKey: PublicKey }[], extra: { allowRollback?: boolean; allowExpired?: boolean } = {}) {
      return { trust: { keys: keys.map((k) => k.publicKey), allowRollback: false, allowExpired: false, ...extra } };
    }

    it("accepts the trusted key, refuses another, and refuses a rollback unless allowed", async ({ onTestFinished }) => {
      const { dir, upstream, tree, serve, sync, syncFails, expectClean, mirrorFiles, committedVersion } = await harness(onTestFinished);
      const keyA = await makeKeyPair(join(dir, "keys", "a"));
      const keyB = await makeKeyPair(join(dir, "keys", "b"));
      await makeUpstream(upstream, tree, { signingKey: keyA.secretKey });
      const server = await serve(upstream);

      // A fresh mirror trusting only B takes nothing.
      const other = createFolderStore(join(dir, "mirror-b"));
      expect(await syncFails([server.url], { ...trusting([keyB]), store: other })).toBeInstanceOf(SignatureError);
      expect(await other.readCommitted()).toBeUndefined();

      const first = await sync([server.url], trusting([keyA]));
      expect(first.result).toBe("updated");
      expect(server.requests.map((r) => r.path)).toContain(SIGNATURE_PATH);
      await expectClean();

      // Upstream re-signed by an untrusted key: refused, the mirror keeps its version.
      await makeUpstream(upstream, { "clamav/bytecode.cvd": "by B\n" }, { signingKey: keyB.secretKey });
      expect(await syncFails([server.url], trusting([keyA]))).toBeInstanceOf(SignatureError);
      expect(await committedVersion()).toBe(first.version);
      expect((await mirrorFiles())["clamav/bytecode.cvd"]?.toString()).toBe("bytecode\n");
      await expectClean();

      // Version 3 by A is accepted...
      const v3 = await makeUpstream(upstream, { "clamav/bytecode.cvd": "v3\n" }, { signingKey: keyA.secretKey });
      expect(v3.manifest.version).toBe(3);
      const accepted = await sync([server.url], trusting([keyA]));
      expect(accepted).toMatchObject({ result: "updated", upstreamVersion: 3 });
      await expectClean();

      // ...so an upstream started afresh at version 1 is a rollback.
      await rm(join(upstream, ".update-mirror"), { recursive: true });
      const v1 = await makeUpstream(upstream, { "clamav/bytecode.cvd": "old\n" }, { signingKey: keyA.secretKey });
      expect(v1.manifest.version).toBe(1);
      expect(await syncFails([server.url], trusting([keyA]))).toBeInstanceOf(RefusedPlanError);
      expect(await committedVersion()).toBe(accepted.version);
      expect((await mirrorFiles())["clamav/bytecode.cvd"]?.toString()).toBe("v3\n");
      await expectClean();

      const rolled = await sync([server.url], trusting([keyA], { allowRollback: true }));
      expect(rolled).toMatchObject({ result: "updated", upstreamVersion: 1 });
      expect((await mirrorFiles())["clamav/bytecode.cvd"]?.toString()).toBe("old\n");
      await expectClean();
    });

    it("refuses an expired upstream manifest unless allowed", async ({ onTestFinished }) => {
      const { dir, upstream, tree, store, serve, sync, syncFails, ofType, expectClean, mirrorFiles } = await harness(onTestFinished);
      const keyA = await makeKeyPair(join(dir, "keys", "a"));
      await makeUpstream(upstream, tree, { signingKey: keyA.secretKey });
      const loaded = await readMirrorManifest(upstream);
      if (!loaded) throw new Error("upstream has no manifest");
      // `index` refuses an expiry in the past, so the stale manifest is serialized and signed directly.
      await commitMirrorMetadata(upstream, { ...loaded.manifest, expires: "2020-01-01T00:00:00Z" }, manifestSigner(keyA.secretKey));
      const server = await serve(upstream);
      const err = await syncFails([server.url], trusting([keyA]));
      expect(err).toBeInstanceOf(RefusedPlanError);
      expect(err.message).toMatch(/expired/);
      expect(ofType("source:probe")).toEqual([expect.objectContaining({ result: "refused" })]);
      expect(await store.readCommitted()).toBeUndefined();

      expect((await sync([server.url], trusting([keyA], { allowExpired: true }))).result).toBe("updated");
      expect(await mirrorFiles()).toEqual(asBuffers(tree));
      await expectClean();
    });
  });

  it("chooses the source with the newer manifest", async ({ onTestFinished }) => {
    const { seed, dir, upstream, tree, serve, sync, ofType, expectClean, mirrorFiles } = await harness(onTestFinished);
    const older = join(dir, "older");
    await seed(older);
    const newerTree = { ...tree, "clamav/bytecode.cvd": "newer\n" };
    await seed();
    await makeUpstream(upstream, newerTree);
    const a = await serve(older);
    const b = await serve(upstream);
    const summary = await sync([a.url, b.url]);
    expect(ofType("source:chosen")).toEqual([{ type: "source:chosen", source: b.url, version: 2 }]);
    expect(summary).toMatchObject({ result: "updated", source: b.url, upstreamVersion: 2 });
    expect(a.requests.map((r) => r.path)).toEqual([MANIFEST_PATH]);
    expect(await mirrorFiles()).toEqual(asBuffers(newerTree));
    await expectClean();
  });

  it("refuses an upstream that shrank sharply or emptied, unless max-delete allows it", async ({ onTestFinished }) => {
    const { upstream, mirror, serve, sync, syncFails, expectClean, mirrorFiles, committedVersion } = await harness(onTestFinished);
    const ten = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`files/f${i}.bin`, `file ${i}\n`]));
    await makeUpstream(upstream, ten, { exact: true });
    const server = await serve(upstream);
    const first = await sync([server.url]);
    expect(first.added).toBe(10);
    await expectClean();

    await makeUpstream(upstream, { "files/f0.bin": "file 0\n", "files/f1.bin": "file 1\n" }, { exact: true });
    const shrank = await syncFails([server.url]);
    expect(shrank).toBeInstanceOf(RefusedPlanError);
    expect(shrank.message).toMatch(/shrank sharply/);
    expect(await committedVersion()).toBe(first.version);
    expect(await mirrorFiles()).toEqual(asBuffers(ten));

    await makeUpstream(upstream, {}, { exact: true });
    const emptied = await syncFails([server.url]);
    expect(emptied).toBeInstanceOf(RefusedPlanError);
    expect(emptied.message).toMatch(/is empty/);
    expect(await committedVersion()).toBe(first.version);
    expect(await mirrorFiles()).toEqual(asBuffers(ten));
    await expectClean();

    const forced = await sync([server.url], { maxDelete: { percent: 100 } });
    expect(forced).toMatchObject({ result: "updated", removed: 10 });
    expect(await mirrorFiles()).toEqual({});
    await expect(readdir(join(mirror, "files"))).rejects.toMatchObject({ code: "ENOENT" });
    await expectClean();
  });

  describe("selection", () => {
    const tagRules = [
      { match: "kes/win-x64/**", set: { product: "kes", platform: "windows" } },
      { match: "kes/linux/**", set: { product: "kes", platform: "linux" } },
      { match: "clamav/**", set: { product: "clamav" } },
    ];

    it("takes only files matching include and not exclude", async ({ onTestFinished }) => {
      const { upstream, tree, serve, sync, expectClean, mirrorFiles } = await harness(onTestFinished);
      await makeUpstream(upstream, tree, { tagRules });
      const server = await serve(upstream);
      const summary = await sync([server.url], { selection: { include: ["kes/**", "clamav/*"], exclude: ["**/*.txt"], tags: {} } });
      const expected = ["clamav/bytecode.cvd", "kes/linux/module.bin", "kes/win-x64/bases/daily.cvd", "kes/win-x64/bases/main-en.cvd"];
      expect(summary.added).toBe(4);
      expect(Object.keys(await mirrorFiles()).sort()).toEqual(expected);
      expect(server.requests.map((r) => r.path).filter((p) => p !== MANIFEST_PATH).sort()).toEqual(expected);
      await expectClean();
    });

    it("takes only files with the selected tags, and a new selection is not answered from the validator", async ({ onTestFinished }) => {
      const { upstream, tree, store, serve, sync, expectClean, mirrorFiles } = await harness(onTestFinished);
      await makeUpstream(upstream, tree, { tagRules });
      const server = await serve(upstream);
      await sync([server.url], { selection: { include: [], exclude: [], tags: { platform: ["windows"] } } });
      const committed = await store.readCommitted();
      expect(committed?.manifest.files.map((f) => [f.path, f.tags])).toEqual([
        ["kes/win-x64/bases/daily.cvd", { platform: "windows", product: "kes" }],
        ["kes/win-x64/bases/main-en.cvd", { platform: "windows", product: "kes" }],
      ]);
      await expectClean();

      server.requests.length = 0;
      const widened = await sync([server.url], { selection: { include: [], exclude: [], tags: { product: ["kes", "clamav"] } } });
      expect(widened).toMatchObject({ result: "updated", added: 3, removed: 0 });
      expect(server.requests[0]?.headers["if-none-match"]).toBeUndefined();
      expect(Object.keys(await mirrorFiles()).sort()).toEqual(["clamav/bytecode.cvd", "kes/linux/module.bin", "kes/linux/readme.txt", "kes/win-x64/bases/daily.cvd", "kes/win-x64/bases/main-en.cvd"]);
      await expectClean();
    });
  });

  it("follows redirects to another server (a CDN) for the manifest and files, and gives up on a loop", async ({ onTestFinished }) => {
    const { seed, dir, upstream, tree, serve, sync, ofType, expectClean, mirrorFiles } = await harness(onTestFinished);
    await seed();
    const cdnRoot = join(dir, "cdn");
    await seed(cdnRoot);
    const front = await serve(upstream);
    const cdn = await serve(cdnRoot);
    front.setFault(MANIFEST_PATH, { kind: "redirect", to: `${cdn.url}${MANIFEST_PATH}`, code: 301 });
    front.setFault(FAULTY, { kind: "redirect", to: `/elsewhere/${FAULTY}`, code: 307 });
    front.setFault(`elsewhere/${FAULTY}`, { kind: "redirect", to: `${cdn.url}${FAULTY}` });
    const summary = await sync([front.url]);
    expect(summary).toMatchObject({ result: "updated", source: front.url });
    expect(requestsFor(cdn, MANIFEST_PATH)).toHaveLength(1);
    expect(requestsFor(cdn, FAULTY)).toHaveLength(1);
    expect(await mirrorFiles()).toEqual(asBuffers(tree));
    await expectClean();

    // A loop ends after a few hops with an error naming it, and the next source takes over.
    await makeUpstream(upstream, { [FAULTY]: "changed after the loop\n" });
    await makeUpstream(cdnRoot, { [FAULTY]: "changed after the loop\n" });
    front.setFault(MANIFEST_PATH, undefined);
    front.setFault(FAULTY, { kind: "redirect", to: `${front.url}${FAULTY}` });
    const looped = await sync([front.url, cdn.url]);
    expect(looped.result).toBe("updated");
    expect(ofType("file:failover")).toEqual([expect.objectContaining({ path: FAULTY, from: front.url, reason: expect.stringContaining("redirects") })]);
    expect((await mirrorFiles())[FAULTY]?.toString()).toBe("changed after the loop\n");
  });

  it("fails over file by file to a second vendor server", async ({ onTestFinished }) => {
    const { seed, dir, upstream, tree, serve, sync, ofType, expectClean, mirrorFiles } = await harness(onTestFinished);
    await seed();
    const copy = join(dir, "copy");
    await seed(copy);
    const bad = await serve(upstream);
    const good = await serve(copy);
    const nonEmpty = Object.keys(tree).filter((p) => Buffer.from(tree[p] ?? "").length > 0);
    for (const path of nonEmpty) bad.setFault(path, { kind: "wrongBytes" });
    const summary = await sync([bad.url, good.url]);
    expect(summary).toMatchObject({ result: "updated", source: bad.url });
    expect(ofType("file:failover").map((e) => e.path).sort()).toEqual([...nonEmpty].sort());
    for (const path of nonEmpty) expect(ofType("file:done").find((e) => e.path === path)?.source).toBe(good.url);
    expect(await mirrorFiles()).toEqual(asBuffers(tree));
    await expectClean();
  });
});
