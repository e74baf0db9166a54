// The Source conformance suite against every kind: a folder, the HTTP source over a plain vendor server and over our own `serve`, and exported archives.
import { readFile, rm, stat, symlink } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "vitest";
import { type ArchiveInput, writeArchive } from "../../src/archive/writer.js";
import { walkTree } from "../../src/fs/walk.js";
import { openArchiveSource } from "../../src/sources/archive.js";
import { DEFAULT_HTTP_OPTIONS, type HttpOptions } from "../../src/net/http-options.js";
import { SERVE_DEFAULTS, startServer } from "../../src/serve/server.js";
import { createFolderSource } from "../../src/sources/folder.js";
import { openSources } from "../../src/sources/registry.js";
import { copyTree, type FtpServer, FTP_SKIP_REASON, ftpFolder, ftpMlsdServer, ftpService, ftpUrl, startFtpCuttingProxy } from "../servers/ftp-service.js";
import { copyTree as copySmbTree, SMB_SKIP_REASON, smbFolder, smbService, smbUrl, startSmbCuttingProxy } from "../servers/smb-service.js";
import { startVendorServer } from "../servers/vendor-server.js";
import { startCuttingProxy } from "./cutting-proxy.js";
import { describeSourceConformance } from "./source-suite.js";

// Proxies from the environment must not capture requests to 127.0.0.1.
const HTTP: HttpOptions = { ...DEFAULT_HTTP_OPTIONS, useEnvProxy: false, connectTimeoutMs: 5_000, headersTimeoutMs: 10_000, idleTimeoutMs: 10_000 };
const SILENT = { info: () => undefined, warn: () => undefined, error: () => undefined };

describeSourceConformance("folder", async (root) => ({ source: createFolderSource(root), close: async () => undefined }), {
  rangeReads: true,
  list: true,
  ifRange: { unsupported: "a folder has no validator; a file changed under a partial shows in its size and hash" },
  capsAtExpectedSize: { unsupported: "a local read ends with the file; the store refuses extra bytes itself" },
  cutBody: { unsupported: "a local read cannot be cut by a transport" },
  seesNewCommits: true,
});

describeSourceConformance(
  "http over the vendor test server",
  async (root) => {
    const server = await startVendorServer(root);
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

  describeSourceConformance(
    "ftp (vsftpd, LIST + MDTM, through a cutting proxy)",
    async (root) => {
      const folder = await publish(root, "conformance-ftp");
      const proxy = await startFtpCuttingProxy({ host: service.url.hostname, port: Number(service.url.port) });
      const opened = openSources([ftpUrl(service, folder.name, "ftp", "127.0.0.1", String(proxy.port))], HTTP, ftpSecrets);
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
    { ...FTP_OPTIONS, cutBody: true },
  );

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

  describeSourceConformance(
    "ftp (pure-ftpd, MLSD, through a cutting proxy)",
    async (root) => {
      const folder = await publish(root, "conformance-mlsd", mlsdServer);
      const proxy = await startFtpCuttingProxy({ host: mlsdServer.url.hostname, port: Number(mlsdServer.url.port) });
      const opened = openSources([ftpUrl(mlsdServer, folder.name, "ftp", "127.0.0.1", String(proxy.port))], HTTP, { ftp: { password: mlsdServer.password } });
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
    { ...FTP_OPTIONS, cutBody: true },
  );
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
