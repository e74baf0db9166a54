// SMB source: smb://[DOMAIN;]USER@host[:port]/share/path through our SMB2 client (one connection, NTLMv2, no signing or encryption).
import { IntegrityError, InputRefusedError, NotFoundError, SourceError, UpdateMirrorError } from "../core/errors.js";
import { MAX_MANIFEST_BYTES, parseManifest } from "../core/manifest.js";
import { comparePaths, pathSetConflicts, unsafePathReason } from "../core/safe-path.js";
import { LISTING_LIMITS, type ManifestProbe, type OpenedFile, type OpenOptions, type ProbeOptions, type Source, type SourceEntry } from "../core/source.js";
import { MANIFEST_NAME, METADATA_DIR, SIGNATURE_NAME } from "../mirror/layout.js";
import type { HttpOptions } from "../net/http-options.js";
import { createSmbClient, type SmbClient, type SmbDirEntry, type SmbStat } from "../smb/client.js";
import { parseSmbUrl } from "../smb/url.js";

export interface SmbSourceOptions {
  /** The connect timeout, the idle timeout (longest wait for one reply) and the total timeout of one transfer. */
  http: HttpOptions;
  /** Password of the user named in the URL (given by reference upstream); a guest login needs none. */
  password?: string;
  /** Listing limits: folders deeper than this, or more entries than this, fail the listing. */
  maxDepth?: number;
  maxEntries?: number;
}

/** Folders listed at once; all share the one connection (SMB multiplexes requests). */
const LIST_CONCURRENCY = 4;
const SIGNATURE_LIMIT = 16 * 1024;

/** What identifies one version of a file: its size and last write time to 100 ns, both from the open that reads it. */
function validatorOf(stat: SmbStat): string {
  return `${stat.size}:${stat.mtime100ns}`;
}

/**
 * Opens an SMB source on `spec` (`smb://[DOMAIN;]USER@host[:port]/share/path`). Nothing connects until
 * the first request. Requests throw SourceError (SmbError, naming the NT status), NotFoundError,
 * ManifestError or InputRefusedError, none of which carries the password. Throws UsageError for a bad URL.
 */
export function createSmbSource(spec: string, options: SmbSourceOptions): Source {
  const url = parseSmbUrl(spec, "SMB source");
  const label = url.label;
  const http = options.http;
  const maxDepth = options.maxDepth ?? LISTING_LIMITS.maxDepth;
  const maxEntries = options.maxEntries ?? LISTING_LIMITS.maxEntries;
  const client: SmbClient = createSmbClient(
    { host: url.host, port: url.port, share: url.share, domain: url.domain, user: url.user, password: options.password },
    { label, connectTimeoutMs: http.connectTimeoutMs, requestTimeoutMs: http.idleTimeoutMs },
  );
  const base = url.path.join("/");
  const remote = (path: string) => (base === "" ? path : path === "" ? base : `${base}/${path}`);
  const manifestPath = `${METADATA_DIR}/${MANIFEST_NAME}`;

  /** Reads a whole small file, or undefined when it is not there. */
  async function readOptional(path: string, limit: number): Promise<Buffer | undefined> {
    return client.readSmall(remote(path), limit);
  }

  return {
    label,
    // FILETIME has 100 ns steps; we report whole ms.
    capabilities: { rangeReads: true, mtimePrecisionMs: 1 },

    async probeManifest(validator, probe: ProbeOptions = {}): Promise<ManifestProbe> {
      probe.signal?.throwIfAborted();
      let opened: Awaited<ReturnType<SmbClient["openRead"]>>;
      try {
        opened = await client.openRead(remote(manifestPath));
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        // No manifest: the root itself must exist, or the URL is wrong.
        const root = await client.stat(base);
        if (!root.isDirectory) throw new SourceError(`${label}: not a folder`, { retryable: false });
        return { kind: "none" };
      }
      const current = validatorOf(opened.stat);
      if (validator !== undefined && validator === current) {
        await opened.close();
        return { kind: "unchanged" };
      }
      if (opened.size > MAX_MANIFEST_BYTES) {
        await opened.close();
        throw new SourceError(`${label}${manifestPath}: ${opened.size} bytes, more than the limit of ${MAX_MANIFEST_BYTES}`, { retryable: false });
      }
      const chunks: Buffer[] = [];
      for await (const chunk of opened.body) chunks.push(chunk);
      const bytes = Buffer.concat(chunks);
      const manifest = parseManifest(bytes, `${label}${manifestPath}`);
      const signature = probe.signature ? (await readOptional(`${METADATA_DIR}/${SIGNATURE_NAME}`, SIGNATURE_LIMIT))?.toString("utf8") : undefined;
      return { kind: "manifest", upstream: { manifest, bytes, validator: current, ...(signature !== undefined && { signature }) } };
    },

    async list(signal?: AbortSignal): Promise<SourceEntry[]> {
      const files: SourceEntry[] = [];
      const refused: string[] = [];
      const queue: { rel: string; depth: number }[] = [{ rel: "", depth: 0 }];
      let entries = 0;
      let failure: unknown;

      const take = (rel: string, depth: number, listing: SmbDirEntry[]) => {
        for (const entry of listing) {
          const name = entry.name;
          const path = rel === "" ? name : `${rel}/${name}`;
          if (rel === "" && name === METADATA_DIR) continue; // the mirror's own metadata, private/ included
          entries += 1;
          if (entries > maxEntries) {
            failure ??= new SourceError(`${label}: more than ${maxEntries} entries; refusing to list further`, { retryable: false });
            return;
          }
          if (entry.isReparsePoint) {
            refused.push(`${path}: symbolic link, junction or other reparse point (not supported; replace it with what it points to)`);
            continue;
          }
          const reason = name.includes("\uFFFD") ? "name is not valid UTF-16 (or contains U+FFFD)" : unsafePathReason(path);
          if (reason !== undefined) {
            refused.push(`${path}: name not allowed in a mirror (${reason})`);
            continue;
          }
          if (entry.isDirectory) {
            if (depth + 1 > maxDepth) {
              failure ??= new SourceError(`${label}: ${path}: folders nested deeper than ${maxDepth}; refusing to list further`, { retryable: false });
              return;
            }
            queue.push({ rel: path, depth: depth + 1 });
          } else files.push({ path, size: entry.size, mtimeMs: entry.mtimeMs });
        }
      };

      // A few folders at a time; each worker takes the next queued folder until none is left and none is being listed.
      let busy = 0;
      const waiters: (() => void)[] = [];
      const worker = async (): Promise<void> => {
        for (;;) {
          if (failure !== undefined) return;
          const next = queue.shift();
          if (next === undefined) {
            if (busy === 0) return;
            await new Promise<void>((resolve) => waiters.push(resolve));
            continue;
          }
          busy += 1;
          try {
            signal?.throwIfAborted();
            take(next.rel, next.depth, await client.readdir(remote(next.rel), signal));
          } catch (err) {
            failure ??= err;
          } finally {
            busy -= 1;
            for (const wake of waiters.splice(0)) wake();
          }
        }
      };
      await Promise.all(Array.from({ length: LIST_CONCURRENCY }, worker));
      if (failure !== undefined) {
        if (failure instanceof UpdateMirrorError) throw failure;
        throw new SourceError(`${label}: listing: ${(failure as Error)?.message ?? String(failure)}`, { cause: failure });
      }
      refused.push(...pathSetConflicts(files.map((f) => f.path)));
      if (refused.length > 0) throw new InputRefusedError(`source ${label}: ${refused.length} entries a mirror cannot carry`, refused.sort());
      return files.sort((a, b) => comparePaths(a.path, b.path));
    },

    async open(path: string, open: OpenOptions = {}): Promise<OpenedFile> {
      const signal = open.signal;
      if (signal?.aborted) throw new SourceError(`${label}: ${path}: aborted`, { cause: signal.reason, retryable: false });
      let offset = open.offset ?? 0;
      let opened = await client.openRead(remote(path), { offset, ...(signal && { signal }) });
      const validator = validatorOf(opened.stat);
      // A partial from another version of the file, or one longer than the file now is: start over.
      if (offset > 0 && ((open.ifRange !== undefined && open.ifRange !== validator) || offset > opened.size)) {
        await opened.close();
        offset = 0;
        opened = await client.openRead(remote(path), { ...(signal && { signal }) });
      }
      const limit = open.expectedSize === undefined ? undefined : open.expectedSize - offset;
      const deadline = performance.now() + http.totalTimeoutMs;
      const file = opened;
      async function* body(): AsyncGenerator<Uint8Array> {
        let received = 0;
        try {
          for await (const chunk of file.body) {
            received += chunk.length;
            if (limit !== undefined && received > limit) throw new IntegrityError(`${label}${path}: the file holds more bytes than expected (${open.expectedSize})`);
            if (performance.now() > deadline) throw new SourceError(`${label}${path}: the transfer took longer than the total timeout`);
            yield chunk;
          }
        } finally {
          await file.close();
        }
      }
      return { body: body(), offset, size: file.size, validator };
    },

    async readMetadata(name: string): Promise<Buffer | undefined> {
      return readOptional(`${METADATA_DIR}/${name}`, MAX_MANIFEST_BYTES);
    },

    async close(): Promise<void> {
      await client.close();
    },
  };
}
