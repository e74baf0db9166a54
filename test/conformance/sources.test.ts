// The Source conformance suite against every kind: a folder, the HTTP source over a plain vendor server and over our own `serve`, and exported archives.
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { type ArchiveInput, writeArchive } from "../../src/archive/writer.js";
import { walkTree } from "../../src/fs/walk.js";
import { openArchiveSource } from "../../src/sources/archive.js";
import { DEFAULT_HTTP_OPTIONS, type HttpOptions } from "../../src/net/http-options.js";
import { SERVE_DEFAULTS, startServer } from "../../src/serve/server.js";
import { createFolderSource } from "../../src/sources/folder.js";
import { openSources } from "../../src/sources/registry.js";
import { startVendorServer } from "../servers/vendor-server.js";
import { startCuttingProxy } from "./cutting-proxy.js";
import { describeSourceConformance } from "./source-suite.js";

// Proxies from the environment must not capture requests to 127.0.0.1.
const HTTP: HttpOptions = { ...DEFAULT_HTTP_OPTIONS, useEnvProxy: false, connectTimeoutMs: 5_000, headersTimeoutMs: 10_000, idleTimeoutMs: 10_000 };
const SILENT = { info: () => undefined, warn: () => undefined, error: () => undefined };
const NO_LISTING = { unsupported: "the HTTP source reads manifests only; directory listings come with a later issue" };

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
  { rangeReads: true, list: NO_LISTING, ifRange: true, capsAtExpectedSize: true, cutBody: true, seesNewCommits: true },
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
  { rangeReads: true, list: NO_LISTING, ifRange: true, capsAtExpectedSize: true, cutBody: true, seesNewCommits: true },
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
