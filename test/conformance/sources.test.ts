// The Source conformance suite against every kind: the in-memory source of unit tests, a folder, the HTTP source over a plain vendor server (nginx- and Apache-style listings) and over our own `serve`, exported archives, FTP and SMB.
import { mkdtemp, readFile, rm, stat, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type ArchiveInput, writeArchive } from "../../src/archive/writer.js";
import { InputRefusedError, NotFoundError, SourceError } from "../../src/core/errors.js";
import { walkTree } from "../../src/fs/walk.js";
import { openArchiveSource } from "../../src/sources/archive.js";
import { DEFAULT_HTTP_OPTIONS, type HttpOptions } from "../../src/net/http-options.js";
import { SERVE_DEFAULTS, startServer } from "../../src/serve/server.js";
import { createFolderSource } from "../../src/sources/folder.js";
import { openSources } from "../../src/sources/registry.js";
import { copyTree, type FtpServer, FTP_SKIP_REASON, ftpFolder, ftpMlsdServer, ftpService, ftpUrl, startFtpCuttingProxy } from "../servers/ftp-service.js";
import { copyTree as copySmbTree, SMB_SKIP_REASON, smbFolder, smbService, smbUrl, startSmbCuttingProxy } from "../servers/smb-service.js";
import type { ListingStyle } from "../servers/listing-styles.js";
import { makeUpstream, startVendorServer } from "../servers/vendor-server.js";
import { createMemorySource, type MemoryFile } from "../support/memory-source.js";
import { startCuttingProxy } from "./cutting-proxy.js";
import { CONFORMANCE_TREE, describeSourceConformance } from "./source-suite.js";

// Proxies from the environment must not capture requests to 127.0.0.1.
const HTTP: HttpOptions = { ...DEFAULT_HTTP_OPTIONS, useEnvProxy: false, connectTimeoutMs: 5_000, headersTimeoutMs: 10_000, idleTimeoutMs: 10_000 };
const SILENT = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** The published folder (payload and public metadata, nothing private) as the map a memory source holds. */
async function filesOf(root: string): Promise<Map<string, MemoryFile>> {
  const { files } = await walkTree(root, { skip: (rel, isDir) => isDir && rel === ".update-mirror/private" });
  return new Map(await Promise.all(files.map(async (f) => [f.path, { data: await readFile(f.absPath), mtimeMs: f.mtimeMs }] as const)));
}

describeSourceConformance(
  "memory (test/support/memory-source.ts, for unit tests)",
  async (root) => {
    const source = createMemorySource(await filesOf(root));
    return { source, cutNextBody: (path) => source.cutNext(path), close: () => source.close() };
  },
  {
    rangeReads: true,
    list: true,
    ifRange: true,
    capsAtExpectedSize: true,
    cutBody: true,
    seesNewCommits: { unsupported: "a memory source holds the map it was given, and the suite commits on disk; a unit test publishes a new version with replace()" },
  },
);

// What the suite cannot reach on a memory source, since its tree is always published and never changes under it.
describe("memory source beyond the suite", () => {
  const manifestOf = async (tree: Record<string, Buffer>) => {
    const dir = await mkdtemp(join(tmpdir(), "um-memory-"));
    try {
      await makeUpstream(dir, tree);
      return await filesOf(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  it("probes none without a manifest, reads metadata files whole, and never serves private ones", async () => {
    const source = createMemorySource({ "a.txt": "a\n", ".update-mirror/delta.json": "{}", ".update-mirror/private/journal.json": "{}" });
    expect(await source.probeManifest(undefined, { signature: true })).toEqual({ kind: "none" });
    expect((await source.readMetadata?.("delta.json"))?.toString()).toBe("{}");
    expect(await source.readMetadata?.("SHA256SUMS")).toBeUndefined();
    expect(await source.readMetadata?.("private/journal.json")).toBeUndefined();
    await expect(source.open(".update-mirror/private/journal.json")).rejects.toBeInstanceOf(NotFoundError);
    expect(await source.list()).toEqual([{ path: "a.txt", size: 2 }]);
  });

  it("after replace(), the old validator fetches the new manifest and the old file validator is stale", async () => {
    const first = await manifestOf({ "a.txt": Buffer.from("one\n") });
    const source = createMemorySource(first);
    const probed = await source.probeManifest(undefined);
    if (probed.kind !== "manifest") throw new Error(`expected a manifest, got ${probed.kind}`);
    const opened = await source.open("a.txt");
    source.replace(await manifestOf({ "a.txt": Buffer.from("two, longer\n") }));
    const next = await source.probeManifest(probed.upstream.validator);
    expect(next.kind === "manifest" && next.upstream.manifest.files[0]?.size).toBe(12);
    const restarted = await source.open("a.txt", { offset: 2, ifRange: opened.validator as string });
    expect(restarted.offset).toBe(0);
  });

  it("without rangeReads every open starts at 0; unsafe or clashing names refuse the listing", async () => {
    const plain = createMemorySource({ "a.txt": "abc" }, { rangeReads: false });
    expect((await plain.open("a.txt", { offset: 1 })).offset).toBe(0);
    await expect(createMemorySource({ "a/../b": "x" }).list()).rejects.toBeInstanceOf(InputRefusedError);
    await expect(createMemorySource({ "A.txt": "x", "a.txt": "y" }).list()).rejects.toBeInstanceOf(InputRefusedError);
  });

  it("fails every call once closed", async () => {
    const source = createMemorySource({ "a.txt": "a" });
    await source.close();
    await expect(source.open("a.txt")).rejects.toBeInstanceOf(SourceError);
    await expect(source.list()).rejects.toBeInstanceOf(SourceError);
  });
});

describeSourceConformance("folder", async (root) => ({ source: createFolderSource(root), close: async () => undefined }), {
  rangeReads: true,
  list: true,
  ifRange: { unsupported: "a folder has no validator; a file changed under a partial shows in its size and hash" },
  capsAtExpectedSize: { unsupported: "a local read ends with the file; the store refuses extra bytes itself" },
  cutBody: { unsupported: "a local read cannot be cut by a transport" },
  seesNewCommits: true,
});

// The vendor server in two listing styles: nginx states exact sizes, Apache rounds them above 1 KiB.
const LISTINGS: readonly (readonly [ListingStyle, string])[] = [
  ["nginx", "nginx"],
  ["apache", "Apache"],
];
for (const [style, shown] of LISTINGS) {
  describeSourceConformance(
    `http over the vendor test server (${shown}-style listing)`,
    async (root) => {
      const server = await startVendorServer(root, { listing: style });
      const opened = openSources([server.url], HTTP);
      return {
        source: opened.sources[0] as NonNullable<(typeof opened.sources)[0]>,
        cutNextBody: (path) => server.setFault(path, { kind: "truncate", times: 1 }),
        async close() {
          await opened.close();
          await server.close();
        },
      };
    },
    { rangeReads: true, list: true, ifRange: true, capsAtExpectedSize: true, cutBody: true, seesNewCommits: true },
  );

  // The suite's list() test compares paths and sizes only, which a source reading the manifest would
  // also pass: this pins that the vendor kinds get them by crawling the pages.
  it(`http list() over the ${shown}-style vendor listing crawls its pages, never the manifest`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "um-crawl-"));
    const server = await startVendorServer(dir, { listing: style });
    const opened = openSources([server.url], HTTP);
    try {
      await makeUpstream(dir, CONFORMANCE_TREE);
      const entries = await (opened.sources[0] as NonNullable<(typeof opened.sources)[0]>).list();
      expect(entries.map((e) => e.path).sort()).toEqual(Object.keys(CONFORMANCE_TREE).sort());
      const asked = server.requests.map((r) => `${r.method} /${r.path}`);
      expect(asked).toContain("GET /deep/a/b/c/d/e/f/g/");
      expect(asked.filter((r) => r.includes(".update-mirror"))).toEqual([]);
      // Only the pages, and a HEAD for what a page did not state in bytes (Apache rounds above 1 KiB).
      expect(asked.filter((r) => !(r === "GET /" || (r.startsWith("GET ") && r.endsWith("/"))))).toEqual(style === "apache" ? ["HEAD /big.bin"] : []);
    } finally {
      await opened.close();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

describeSourceConformance(
  "http over update-mirror serve",
  async (root) => {
    const server = await startServer({ ...SERVE_DEFAULTS, root, port: 0, listing: true, pollMs: 100, log: SILENT });
    const proxy = await startCuttingProxy({ host: server.address.address, port: server.address.port });
    const opened = openSources([proxy.url], HTTP);
    return {
      source: opened.sources[0] as NonNullable<(typeof opened.sources)[0]>,
      cutNextBody: (path) => proxy.cutNext(path.split("/").map(encodeURIComponent).join("/")),
      async close() {
        await opened.close();
        await proxy.close();
        await server.close();
      },
    };
  },
  { rangeReads: true, list: true, ifRange: true, capsAtExpectedSize: true, cutBody: true, seesNewCommits: true },
);

/** The published folder (payload and public metadata, nothing private) as archive entries, metadata first. */
async function entriesOf(root: string): Promise<ArchiveInput[]> {
  const { files } = await walkTree(root, { skip: (rel, isDir) => isDir && rel === ".update-mirror/private" });
  const ordered = [...files].sort((a, b) => Number(!a.path.startsWith(".update-mirror/")) - Number(!b.path.startsWith(".update-mirror/")));
  return Promise.all(ordered.map(async (f) => ({ name: f.path, size: f.size, mtime: (await stat(f.absPath)).mtime, data: await readFile(f.absPath) })));
}

for (const [format, splitSize] of [["tar", undefined], ["zip", 1024 * 1024]] as const) {
  describeSourceConformance(
    `archive (${format}${splitSize ? ", split into 1 MiB volumes" : ""})`,
    async (root) => {
      const path = join(root, "..", `medium.${format}`);
      await writeArchive({ format, path, entries: await entriesOf(root), ...(splitSize !== undefined && { splitSize }) });
      const source = await openArchiveSource(path);
      return { source, close: () => source.close() };
    },
    {
      rangeReads: true,
      list: { unsupported: "an archive is imported by its manifest, never listed" },
      ifRange: { unsupported: "an archive does not change under a reader; it has no validator per file" },
      capsAtExpectedSize: { unsupported: "an entry ends where the archive says; the store refuses extra bytes itself" },
      cutBody: { unsupported: "a local read cannot be cut by a transport" },
      seesNewCommits: { unsupported: "an archive is read as it was written; a new export is a new medium" },
    },
  );
}

// FTP against the real vsftpd (LIST + SIZE/MDTM: vsftpd has no MLSD) and pure-ftpd (MLSD) of
// .ci/services.sh. The published tree moves into the FTP user's home and `root` becomes a link to it, so
// the suite's later commit lands where the server serves it. Plain FTP goes through a proxy that can cut
// a data connection; FTPS cannot be relayed that way (its control channel is encrypted), so its cut is
// covered by the plain runs.
const ftp = ftpService();
const mlsd = ftpMlsdServer();
if (ftp === undefined || mlsd === undefined) {
  console.warn(`skipping FTP source conformance: ${FTP_SKIP_REASON}`);
  describe.skip("Source conformance: ftp", () => {
    it(`needs vsftpd: ${FTP_SKIP_REASON}`, () => undefined);
  });
} else {
  const service = ftp;
  const mlsdServer = mlsd;
  const FTP_OPTIONS = {
    rangeReads: true,
    list: true as const,
    ifRange: { unsupported: "FTP has no conditional REST; a partial whose file changed fails its hash and is fetched again" },
    capsAtExpectedSize: true as const,
    seesNewCommits: true as const,
  };
  const publish = async (root: string, prefix: string, server: FtpServer = service) => {
    const folder = await ftpFolder(server, prefix);
    await copyTree(root, folder.dir);
    await rm(root, { recursive: true, force: true });
    await symlink(folder.dir, root);
    return folder;
  };
  const ftpSecrets = { ftp: { password: service.password } };

  /** A source over `server` through a proxy that can cut a data connection, for the plain-FTP kinds. */
  const throughCuttingProxy = (server: FtpServer, prefix: string) => async (root: string) => {
    const folder = await publish(root, prefix, server);
    const proxy = await startFtpCuttingProxy({ host: server.url.hostname, port: Number(server.url.port) });
    const opened = openSources([ftpUrl(server, folder.name, "ftp", "127.0.0.1", String(proxy.port))], HTTP, { ftp: { password: server.password } });
    return {
      source: opened.sources[0] as NonNullable<(typeof opened.sources)[0]>,
      cutNextBody: (path: string) => proxy.cutNext(path),
      async close() {
        await opened.close();
        await proxy.close();
        await folder.remove();
      },
    };
  };

  describeSourceConformance("ftp (vsftpd, LIST + MDTM, through a cutting proxy)", throughCuttingProxy(service, "conformance-ftp"), { ...FTP_OPTIONS, cutBody: true });

  describeSourceConformance(
    "ftps (vsftpd, explicit TLS with the test CA)",
    async (root) => {
      const folder = await publish(root, "conformance-ftps");
      const opened = openSources([ftpUrl(service, folder.name, "ftps", "localhost")], { ...HTTP, ca: await readFile(service.ca, "utf8") }, ftpSecrets);
      return {
        source: opened.sources[0] as NonNullable<(typeof opened.sources)[0]>,
        async close() {
          await opened.close();
          await folder.remove();
        },
      };
    },
    { ...FTP_OPTIONS, cutBody: { unsupported: "the control channel of FTPS is encrypted, so the test proxy cannot find its data connections; the plain FTP runs cover the cut" } },
  );

  describeSourceConformance("ftp (pure-ftpd, MLSD, through a cutting proxy)", throughCuttingProxy(mlsdServer, "conformance-mlsd"), { ...FTP_OPTIONS, cutBody: true });
}

// SMB against the real Samba of .ci/samba.sh (default settings: NTLMv2 only, async I/O on, so reads meet
// STATUS_PENDING). The published tree moves into the data share and `root` becomes a link to it, so the
// suite's later commit lands where the server serves it. A TCP proxy in front cuts the one connection mid-read.
const smb = smbService();
if (smb === undefined) {
  console.warn(`skipping SMB source conformance: ${SMB_SKIP_REASON}`);
  describe.skip("Source conformance: smb", () => {
    it(`needs Samba: ${SMB_SKIP_REASON}`, () => undefined);
  });
} else {
  const service = smb;
  describeSourceConformance(
    "smb (Samba 4.17, NTLMv2, through a cutting proxy)",
    async (root) => {
      const folder = await smbFolder(service, "conformance-smb");
      await copySmbTree(root, folder.dir);
      await rm(root, { recursive: true, force: true });
      await symlink(folder.dir, root);
      const proxy = await startSmbCuttingProxy({ host: service.url.hostname, port: Number(service.url.port) });
      const opened = openSources([smbUrl(service, folder.name, String(proxy.port))], HTTP, { smb: { password: service.password } });
      return {
        source: opened.sources[0] as NonNullable<(typeof opened.sources)[0]>,
        cutNextBody: (path) => proxy.cutNext(path),
        async close() {
          await opened.close();
          await proxy.close();
          await folder.remove();
        },
      };
    },
    { rangeReads: true, list: true, ifRange: true, capsAtExpectedSize: true, cutBody: true, seesNewCommits: true },
  );
}
