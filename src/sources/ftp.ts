// FTP source: ftp:// and explicit FTPS (ftps://, AUTH TLS) through basic-ftp, over a small pool of connections.
import { isIP } from "node:net";
import { PassThrough, Writable } from "node:stream";
import { createSecureContext, rootCertificates } from "node:tls";
import type { Client, FileInfo } from "basic-ftp";
import { InputRefusedError, IntegrityError, NotFoundError, SourceError, UpdateMirrorError, UsageError } from "../core/errors.js";
import { MAX_MANIFEST_BYTES, parseManifest } from "../core/manifest.js";
import { comparePaths, pathSetConflicts, unsafePathReason } from "../core/safe-path.js";
import { LISTING_LIMITS, type ManifestProbe, type OpenedFile, type OpenOptions, type ProbeOptions, type Source, type SourceEntry } from "../core/source.js";
import { MANIFEST_NAME, METADATA_DIR, SIGNATURE_NAME } from "../mirror/layout.js";
import type { HttpOptions } from "../net/http-options.js";

export interface FtpSourceOptions {
  /** Timeouts and the extra CA; the proxy settings do not apply (FTP connects directly). */
  http: HttpOptions;
  /** Password for the user named in the URL (given by reference upstream); anonymous logins need none. */
  password?: string;
  /** Connections kept to the server, each carrying one command or transfer at a time (default 4). */
  connections?: number;
  /** Listing limits: folders deeper than this, or more entries than this, fail the listing. */
  maxDepth?: number;
  maxEntries?: number;
}

const DEFAULT_CONNECTIONS = 4;
/** Files whose MDTM (and SIZE, when the listing has none) one connection asks for before it returns to the pool. */
const STAT_BATCH = 64;
const SIGNATURE_LIMIT = 16 * 1024;

type BasicFtp = typeof import("basic-ftp");
let loaded: Promise<BasicFtp> | undefined;
/** basic-ftp is loaded on first use, so runs without an FTP source do not pay for it. */
function basicFtp(): Promise<BasicFtp> {
  loaded ??= import("basic-ftp");
  return loaded;
}

/** A reply of the server (FTPError), as opposed to a socket, TLS or timeout failure. */
function replyCode(err: unknown): number | undefined {
  if (!(err instanceof Error) || err.name !== "FTPError") return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

/** The server does not implement the command (SIZE, MDTM on some servers). */
function notImplemented(err: unknown): boolean {
  const reply = replyCode(err);
  return reply === 500 || reply === 502 || reply === 504;
}

/** Splits the URL path into folder names (RFC 1738: relative to the login folder, absolute after a leading %2F). */
function rootOf(url: URL): { absolute: boolean; segments: string[] } {
  const raw = url.pathname.split("/").filter((s) => s !== "");
  const absolute = /^%2f/i.test(raw[0] ?? "");
  const segments = (absolute ? [raw[0]?.slice(3) ?? "", ...raw.slice(1)] : raw).filter((s) => s !== "").map((s) => decodeURIComponent(s));
  return { absolute, segments };
}

interface Pooled {
  client: Client;
  /** It served an earlier request: a failure before any answer may just be the server's idle timeout. */
  reused: boolean;
}

/**
 * Opens an FTP(S) source on `url` (`ftp://[user@]host[:port]/path/`, or `ftps://` for explicit TLS).
 * Nothing connects until the first request. Throws UsageError when the user name, password or path
 * holds a control character (a line break would smuggle in another FTP command); requests throw
 * SourceError, NotFoundError, ManifestError or InputRefusedError, none of which ever carries the password.
 */
export function createFtpSource(url: URL, options: FtpSourceOptions): Source {
  const secure = url.protocol === "ftps:";
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port === "" ? 21 : Number(url.port);
  let user: string;
  try {
    user = url.username === "" ? "anonymous" : decodeURIComponent(url.username);
  } catch {
    throw new UsageError(`ftp source: the user name has a malformed percent escape`);
  }
  const password = options.password ?? (user === "anonymous" ? "anonymous@" : "");
  const http = options.http;
  const maxConnections = Math.max(1, options.connections ?? DEFAULT_CONNECTIONS);
  const maxDepth = options.maxDepth ?? LISTING_LIMITS.maxDepth;
  const maxEntries = options.maxEntries ?? LISTING_LIMITS.maxEntries;
  const shown = new URL(url.href);
  shown.username = "";
  shown.password = "";
  if (!shown.pathname.endsWith("/")) shown.pathname = `${shown.pathname}/`;
  shown.search = "";
  shown.hash = "";
  const label = shown.href;
  let root: ReturnType<typeof rootOf>;
  try {
    root = rootOf(url);
  } catch {
    throw new UsageError(`${label}: the path has a malformed percent escape`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  const control = /[\u0000-\u001f\u007f]/;
  if (control.test(user) || root.segments.some((s) => control.test(s))) throw new UsageError(`${label}: the user name or path has a control character`);
  if (control.test(password)) throw new UsageError(`${label}: the FTP password has a control character (a line break?)`);
  /** The root folder on the server, known after the first login (relative URLs start at the login folder). */
  let base: string | undefined;
  // The system's CAs plus --ca-file's, built once: every data connection of FTPS is a TLS handshake too.
  // Verification is never turned off.
  const secureContext = secure && http.ca !== undefined ? createSecureContext({ ca: [...rootCertificates, http.ca] }) : undefined;
  /** The server answered MDTM with "not implemented": listings go without mtimes. */
  let noMdtm = false;

  /** A server's reply or a library message, with the password cut out should anything ever echo it. */
  function clean(text: string): string {
    const oneLine = text.replace(/\s+/g, " ").trim();
    return password.length >= 3 ? oneLine.split(password).join("[redacted]") : oneLine;
  }

  /**
   * Translates a basic-ftp or socket failure. `file` marks requests naming one file or folder, where
   * 550 means it is not there; elsewhere 550 is a refusal like any other permanent reply.
   */
  function translate(err: unknown, what: string, file = false): UpdateMirrorError {
    if (err instanceof UpdateMirrorError) return err;
    const message = clean((err as Error | undefined)?.message ?? String(err));
    const reply = replyCode(err);
    if (reply !== undefined) {
      if (reply === 550 && file) return new NotFoundError(`${label}: ${what}: not found (${message})`, { cause: err });
      if (reply === 530) {
        return new SourceError(`${label}: login refused (${message}); check the user name in the URL and the password (--ftp-password-env or --ftp-password-file)`, {
          cause: err,
          retryable: false,
        });
      }
      // 4xx are transient by definition (421 too many connections, 425/426 data connection, 450/451 busy).
      return new SourceError(`${label}: ${what}: ${message}`, { cause: err, retryable: reply >= 400 && reply < 500 });
    }
    const code = (err as { code?: unknown } | undefined)?.code;
    const sys = typeof code === "string" ? code : "";
    if (/CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|ERR_SSL/.test(sys)) {
      return new SourceError(`${label}: TLS: ${sys}: ${message} (is the server's CA given with --ca-file?)`, { cause: err, retryable: false });
    }
    return new SourceError(`${label}: ${what === "" ? "" : `${what}: `}${sys !== "" && !message.includes(sys) ? `${sys}: ` : ""}${message}`, { cause: err });
  }

  async function connect(): Promise<Client> {
    const { Client } = await basicFtp();
    const client = new Client(http.idleTimeoutMs);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      client.close();
    }, http.connectTimeoutMs);
    try {
      await client.access({
        host,
        port,
        user,
        password,
        secure,
        // An IP address is checked against the certificate's IP names; a host name is also sent as SNI.
        secureOptions: { ...(secureContext !== undefined && { secureContext }), ...(isIP(host) === 0 && { servername: host }) },
      });
      if (base === undefined) {
        const login = root.absolute ? "/" : await client.pwd();
        base = [login.replace(/\/+$/, ""), ...root.segments].join("/") || "/";
      }
      return client;
    } catch (err) {
      client.close();
      if (timedOut) throw new SourceError(`${label}: no connection and login within ${http.connectTimeoutMs} ms`, { cause: err });
      const reply = replyCode(err);
      if (secure && reply !== undefined && reply !== 530 && reply !== 421 && /AUTH|TLS|SSL/i.test((err as Error).message ?? "")) {
        throw new SourceError(`${label}: the server refused explicit TLS (AUTH TLS): ${clean((err as Error).message)}`, { cause: err, retryable: false });
      }
      throw translate(err, "");
    } finally {
      clearTimeout(timer);
    }
  }

  // --- the pool: up to maxConnections clients, each lent to one request at a time.
  const all = new Set<Client>();
  const idle: Client[] = [];
  const waiting: (() => void)[] = [];
  /** Connections being opened, counted against the pool size. */
  let opening = 0;
  let closed = false;

  async function acquire(signal?: AbortSignal): Promise<Pooled> {
    for (;;) {
      if (closed) throw new SourceError(`${label}: the source is closed`, { retryable: false });
      signal?.throwIfAborted();
      const ready = idle.pop();
      if (ready !== undefined) {
        if (!ready.closed) return { client: ready, reused: true };
        all.delete(ready);
        continue;
      }
      if (all.size + opening < maxConnections) {
        opening += 1;
        let client: Client;
        try {
          client = await connect();
        } catch (err) {
          waiting.shift()?.();
          throw err;
        } finally {
          opening -= 1;
        }
        if (closed) {
          client.close();
          continue;
        }
        all.add(client);
        return { client, reused: false };
      }
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const i = waiting.indexOf(wake);
          if (i >= 0) waiting.splice(i, 1);
          reject(signal?.reason);
        };
        const wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        waiting.push(wake);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    }
  }

  /** Returns a client; one that failed in an unknown state is closed (the next request reconnects). */
  function release(client: Client, healthy: boolean): void {
    if (healthy && !closed && !client.closed) idle.push(client);
    else {
      client.close();
      all.delete(client);
    }
    waiting.shift()?.();
  }

  /**
   * Runs `fn` on a pooled client. A server's reply (even an error) leaves the connection usable; any
   * other failure closes it. A reused connection that fails without a reply (the server dropped it
   * while idle) is replaced once.
   */
  async function withClient<T>(what: string, fn: (client: Client) => Promise<T>, file = false): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const { client, reused } = await acquire();
      try {
        const result = await fn(client);
        release(client, true);
        return result;
      } catch (err) {
        const answered = replyCode(err) !== undefined;
        release(client, answered);
        if (!answered && reused && attempt === 0 && !(err instanceof UpdateMirrorError)) continue;
        throw translate(err, what, file);
      }
    }
  }

  function remote(path: string): string {
    const at = base ?? "/";
    return at === "/" ? `/${path}` : `${at}/${path}`;
  }

  /** Downloads a small file whole into memory, refusing more than `limit` bytes. */
  async function fetchSmall(client: Client, path: string, limit: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = 0;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        total += chunk.length;
        if (total > limit) callback(new IntegrityError(`${label}${path}: larger than the limit of ${limit} bytes`));
        else {
          chunks.push(chunk);
          callback();
        }
      },
    });
    await client.downloadTo(sink, remote(path));
    return Buffer.concat(chunks);
  }

  /** Reads a small file, or undefined when the server says it is not there (550). */
  async function fetchOptional(client: Client, path: string, limit: number): Promise<Buffer | undefined> {
    try {
      return await fetchSmall(client, path, limit);
    } catch (err) {
      if (replyCode(err) === 550) return undefined;
      throw err;
    }
  }

  const manifestPath = `${METADATA_DIR}/${MANIFEST_NAME}`;

  return {
    label,
    // MDTM and MLSD report whole seconds.
    capabilities: { rangeReads: true, mtimePrecisionMs: 1000 },

    async probeManifest(validator, probe: ProbeOptions = {}): Promise<ManifestProbe> {
      probe.signal?.throwIfAborted();
      return withClient(manifestPath, async (client) => {
        // SIZE + MDTM make the validator; a server without either reads the manifest every time.
        const ask = <T>(request: () => Promise<T>): Promise<T | undefined | "missing"> =>
          request().catch((err: unknown) => {
            if (replyCode(err) === 550) return "missing" as const;
            if (notImplemented(err)) return undefined;
            throw err;
          });
        const size = await ask(() => client.size(remote(manifestPath)));
        const mtimeMs = size === "missing" ? "missing" : await ask(async () => (await client.lastMod(remote(manifestPath))).getTime());
        const none = async (): Promise<ManifestProbe> => {
          // No manifest; the root itself must exist, or the URL is wrong.
          await client.cd(base ?? "/").catch((e: unknown) => {
            throw replyCode(e) === 550 ? new NotFoundError(`${label}: folder not found (${clean((e as Error).message)})`, { cause: e }) : e;
          });
          return { kind: "none" };
        };
        if (size === "missing" || mtimeMs === "missing") return none();
        const current = size === undefined || mtimeMs === undefined ? undefined : `${size}:${mtimeMs}`;
        if (validator !== undefined && validator === current) return { kind: "unchanged" };
        if (size !== undefined && size > MAX_MANIFEST_BYTES) throw new SourceError(`${label}: ${manifestPath}: ${size} bytes, more than the limit of ${MAX_MANIFEST_BYTES}`, { retryable: false });
        const bytes = await fetchOptional(client, manifestPath, MAX_MANIFEST_BYTES);
        if (bytes === undefined) return none();
        const manifest = parseManifest(bytes, `${label}${manifestPath}`);
        const signature = probe.signature ? (await fetchOptional(client, `${METADATA_DIR}/${SIGNATURE_NAME}`, SIGNATURE_LIMIT))?.toString("utf8") : undefined;
        // Replaced between SIZE and RETR: no validator, so the next run reads it again.
        const next = bytes.length === size ? current : undefined;
        return { kind: "manifest", upstream: { manifest, bytes, ...(next !== undefined && { validator: next }), ...(signature !== undefined && { signature }) } };
      });
    },

    async list(signal?: AbortSignal): Promise<SourceEntry[]> {
      const files: SourceEntry[] = [];
      const refused: string[] = [];
      /** Files whose listing lacked an exact mtime (LIST) or size. */
      const toStat: SourceEntry[] = [];
      let entries = 0;
      let failure: unknown;

      const listDir = (rel: string) =>
        withClient(
          rel === "" ? "listing" : `${rel}/: listing`,
          async (client) => {
            await client.cd(rel === "" ? (base ?? "/") : remote(rel));
            return client.list();
          },
          true,
        );

      const work: Promise<void>[] = [];
      // Never rejects: the first failure is kept in `failure` and stops the walk.
      const visit = async (rel: string, depth: number): Promise<void> => {
        if (failure !== undefined) return;
        let listing: FileInfo[];
        try {
          signal?.throwIfAborted();
          listing = await listDir(rel);
        } catch (err) {
          failure ??= err;
          return;
        }
        for (const info of listing) {
          const name = info.name;
          if (name === "" || name === "." || name === "..") continue;
          const path = rel === "" ? name : `${rel}/${name}`;
          if (rel === "" && name === METADATA_DIR) continue; // the mirror's own metadata, private/ included
          if (info.isSymbolicLink) continue; // a server-side link names content found elsewhere (or outside the tree)
          entries += 1;
          if (entries > maxEntries) {
            failure ??= new SourceError(`${label}: more than ${maxEntries} entries; refusing to list further`, { retryable: false });
            return;
          }
          const reason = name.includes("/") ? "name contains '/'" : name.includes("\uFFFD") ? "name is not valid UTF-8 (or contains U+FFFD)" : unsafePathReason(path);
          if (reason !== undefined) {
            refused.push(`${path}: name not allowed in a mirror (${reason})`);
            continue;
          }
          if (info.isDirectory) {
            if (depth + 1 > maxDepth) {
              failure ??= new SourceError(`${label}: ${path}: folders nested deeper than ${maxDepth}; refusing to list further`, { retryable: false });
              return;
            }
            work.push(visit(path, depth + 1));
          } else if (info.isFile) {
            const entry: SourceEntry = { path, size: info.size };
            if (info.modifiedAt !== undefined && !Number.isNaN(info.modifiedAt.getTime())) entry.mtimeMs = info.modifiedAt.getTime();
            files.push(entry);
            if (entry.mtimeMs === undefined || !Number.isSafeInteger(entry.size) || entry.size < 0) toStat.push(entry);
          } else {
            refused.push(`${path}: not a regular file or folder (not supported; only regular files can be mirrored)`);
          }
        }
      };

      work.push(visit("", 0));
      // Folders are listed in parallel up to the pool size (withClient waits for a free connection).
      for (let done = 0; done < work.length; done++) await work[done];
      if (failure !== undefined) throw translate(failure, "listing", true);

      // LIST gives sizes but only minute (or day) dates: ask MDTM per file, SIZE where the size is missing.
      const gone = new Set<SourceEntry>();
      const batches: SourceEntry[][] = [];
      for (let i = 0; i < toStat.length; i += STAT_BATCH) batches.push(toStat.slice(i, i + STAT_BATCH));
      let next = 0;
      const worker = async () => {
        for (let batch = batches[next++]; batch !== undefined; batch = batches[next++]) {
          signal?.throwIfAborted();
          const items = batch;
          await withClient("listing", async (client) => {
            for (const entry of items) {
              try {
                if (!Number.isSafeInteger(entry.size) || entry.size < 0) entry.size = await client.size(remote(entry.path)).catch((err: unknown) => (notImplemented(err) ? Number.NaN : Promise.reject(err)));
                if (!noMdtm && entry.mtimeMs === undefined) {
                  entry.mtimeMs = await client.lastMod(remote(entry.path)).then(
                    (d) => d.getTime(),
                    (err: unknown) => {
                      if (!notImplemented(err)) throw err;
                      noMdtm = true; // no mtimes then: every file is hashed again, none is skipped by mistake
                      return undefined;
                    },
                  );
                  if (entry.mtimeMs === undefined) delete entry.mtimeMs;
                }
              } catch (err) {
                if (replyCode(err) === 550) gone.add(entry); // removed since the listing
                else throw err;
              }
            }
          });
        }
      };
      await Promise.all(Array.from({ length: Math.min(maxConnections, batches.length) }, worker));

      const listed = files.filter((f) => !gone.has(f));
      for (const f of listed) if (!Number.isSafeInteger(f.size) || f.size < 0) refused.push(`${f.path}: size unknown (the listing has none and the server no SIZE)`);
      refused.push(...pathSetConflicts(listed.map((f) => f.path)));
      if (refused.length > 0) throw new InputRefusedError(`source ${label}: ${refused.length} entries a mirror cannot carry`, refused.sort());
      return listed.sort((a, b) => comparePaths(a.path, b.path));
    },

    async open(path: string, open: OpenOptions = {}): Promise<OpenedFile> {
      const offset = open.offset ?? 0;
      const signal = open.signal;
      if (signal?.aborted) throw new SourceError(`${label}: ${path}: aborted`, { cause: signal.reason, retryable: false });
      const limit = open.expectedSize === undefined ? undefined : open.expectedSize - offset;
      const deadline = performance.now() + http.totalTimeoutMs;

      for (let attempt = 0; ; attempt++) {
        const { client, reused } = await acquire(signal).catch((err: unknown) => {
          throw err instanceof UpdateMirrorError ? err : new SourceError(`${label}: ${path}: aborted`, { cause: err, retryable: false });
        });
        const pass = new PassThrough({ highWaterMark: 1 << 20 });
        // Settles with the error, or undefined once the server confirmed the whole transfer (226).
        const outcome: Promise<unknown> = client.downloadTo(pass, remote(path), offset).then(
          () => undefined,
          (err: unknown) => err ?? new Error("transfer failed"),
        );
        const onAbort = () => {
          pass.destroy(new SourceError(`${label}: ${path}: aborted`, { cause: signal?.reason, retryable: false }));
          client.close();
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        // Wait for the first bytes or the end, so a missing file fails open() itself, not its body.
        let check: () => void = () => undefined;
        const started = await Promise.race([
          new Promise<"data">((resolve) => {
            check = () => {
              if (pass.readableLength > 0) resolve("data");
            };
            pass.on("readable", check);
          }),
          outcome.then((err) => err),
        ]);
        pass.off("readable", check);
        if (started !== "data" && started !== undefined) {
          signal?.removeEventListener("abort", onAbort);
          const answered = replyCode(started) !== undefined;
          release(client, answered);
          pass.destroy();
          if (!answered && reused && attempt === 0 && !(started instanceof UpdateMirrorError)) continue;
          throw translate(started, path, true);
        }

        async function* body(): AsyncGenerator<Uint8Array> {
          let received = 0;
          let complete = false;
          try {
            for await (const chunk of pass) {
              received += (chunk as Buffer).length;
              if (limit !== undefined && received > limit) throw new IntegrityError(`${path}: the server sent more bytes than expected (${open.expectedSize})`);
              if (performance.now() > deadline) throw new SourceError(`${label}: ${path}: the transfer took longer than the total timeout`);
              yield chunk as Buffer;
            }
            const err = await outcome;
            if (err !== undefined) throw err;
            if (limit !== undefined && received < limit) throw new SourceError(`${label}: ${path}: the transfer ended after ${received} of ${limit} bytes`);
            complete = true;
          } catch (err) {
            if (err instanceof UpdateMirrorError) throw err;
            throw translate(err, `${path}: transfer failed`);
          } finally {
            signal?.removeEventListener("abort", onAbort);
            // Leaving early (an error, a consumer that stopped reading) leaves the transfer running: close that connection.
            if (!complete) {
              client.close();
              pass.destroy();
            }
            await outcome;
            release(client, complete);
          }
        }
        return { body: body(), offset };
      }
    },

    async readMetadata(name: string): Promise<Buffer | undefined> {
      return withClient(`${METADATA_DIR}/${name}`, (client) => fetchOptional(client, `${METADATA_DIR}/${name}`, MAX_MANIFEST_BYTES));
    },

    async close(): Promise<void> {
      closed = true;
      for (const client of all) client.close();
      all.clear();
      idle.length = 0;
      for (const wake of waiting.splice(0)) wake();
    },
  };
}
