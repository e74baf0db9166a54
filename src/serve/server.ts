// The HTTP(S) server: routes over a live snapshot, access log and metrics, limits against slow or greedy clients, graceful shutdown.
import { createHash } from "node:crypto";
import { realpath } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, STATUS_CODES, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { fsError, IoError, UsageError } from "../core/errors.js";
import { METADATA_DIR } from "../mirror/layout.js";
import type { AllowList } from "./allow-list.js";
import type { Authenticator } from "./auth.js";
import { type Content, createContentStore } from "./content.js";
import { createStreamBudget } from "./file-stream.js";
import { healthOf } from "./health.js";
import { listFolder, renderHtmlListing, renderJsonListing } from "./listing.js";
import { type LiveSnapshot, openLiveSnapshot, type ServeLog } from "./live-snapshot.js";
import { contentTypeFor, OCTET_STREAM } from "./media-types.js";
import { createStatusCounter, METRICS_CONTENT_TYPE, type ProcessCounters, renderMetrics } from "./metrics.js";
import { encodePath, parseRequestTarget } from "./paths.js";
import { bodyBytes, countBody, planResponse, type Representation, sendBuffer, sendPlanned } from "./respond.js";
import type { HashEntry, PublicDocument, Snapshot, SnapshotFile } from "./snapshot.js";

/** The server's own routes, all under the reserved folder no mirror path can use (docs/manifest.md §9). */
export const ROUTES = {
  health: `${METADATA_DIR}/healthz`,
  metrics: `${METADATA_DIR}/metrics`,
  byHash: `${METADATA_DIR}/by-hash/sha256/`,
} as const;

/** One line of the access log. Never carries credentials: the user name at most. */
export interface AccessRecord {
  client: string | undefined;
  method: string | undefined;
  /** The request target as received (truncated to 1024 characters). */
  path: string;
  status: number;
  /** Response body bytes handed to the socket. */
  bytes: number;
  ms: number;
  user?: string;
  /** The connection closed before the response was complete. */
  aborted?: boolean;
}

export interface TlsFiles {
  cert: string | Buffer;
  key: string | Buffer;
}

export interface ServeOptions {
  /** The mirror folder. */
  root: string;
  host: string;
  /** 0 picks a free port (see RunningServer.url). */
  port: number;
  tls?: TlsFiles;
  /** Folder listings (HTML and JSON); off answers 404 for folders. */
  listing: boolean;
  /** healthz reports 503 once the manifest is older than this; undefined: no age limit. */
  maxAgeMs?: number;
  allow?: AllowList;
  auth?: Authenticator;
  maxConnections: number;
  /** Longest time for a client to send a request's headers. */
  headersTimeoutMs: number;
  /** Longest time for a client to send a whole request. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept open. */
  keepAliveTimeoutMs: number;
  /** A connection with no traffic for this long (a client that stopped reading) is closed. */
  idleTimeoutMs: number;
  /** On close(), how long in-flight responses may take before their connections are cut. */
  shutdownTimeoutMs: number;
  /** Bytes of small files kept in memory; 0 turns the cache off. */
  cacheBytes: number;
  /** Interval of the manifest stat that backs up fs.watch. */
  pollMs?: number;
  log: ServeLog;
  /** Called once per finished or aborted request; omit to log nothing per request. */
  access?: (record: AccessRecord) => void;
  /**
   * In a worker of several: adds this process's counters to those of the others (serve/cluster.ts),
   * so /metrics shows the whole server whichever process answers. Resolves with the sum and how many
   * processes it covers.
   */
  gatherCounters?: (local: ProcessCounters) => Promise<{ counters: ProcessCounters; processes: number }>;
  /** In a worker of several: passes on a hash check's verdict to the others (see RunningServer.learnVerdict). */
  shareVerdict?: (identity: string, sha256: string) => void;
}

export const SERVE_DEFAULTS = {
  host: "127.0.0.1",
  port: 8080,
  maxConnections: 4096,
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 15_000,
  idleTimeoutMs: 60_000,
  shutdownTimeoutMs: 10_000,
  cacheBytes: 64 * 1024 * 1024,
} as const;

export interface RunningServer {
  /** Base URL, ending in '/': `http://127.0.0.1:8080/`. */
  readonly url: string;
  readonly address: AddressInfo;
  readonly live: LiveSnapshot;
  /** Replaces the certificate and key for new TLS connections (after a renewal). */
  setTls(tls: TlsFiles): void;
  /** Replaces the user list (after the auth file changed); undefined turns authentication off. */
  setAuth(auth: Authenticator | undefined): void;
  /** This process's counters, for summing across workers. */
  counters(): ProcessCounters;
  /** Takes a hash check's verdict from another worker serving the same files, so this one skips that hash. */
  learnVerdict(identity: string, sha256: string): void;
  /**
   * Stops accepting connections, lets responses in flight finish for up to `shutdownTimeoutMs`, then
   * cuts what remains. Idempotent; resolves when every connection is closed.
   */
  close(): Promise<void>;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
// Characters after which a raw target is not simply a path: escapes, a query, separators to refuse.
const RAW_SPECIAL = /[%?#\\]/;
const MAX_LOGGED_TARGET = 1024;
// Bounds of the decoded-target memo (route): entries, and the longest target kept (memory stays under ~10 MB).
const MAX_DECODED_TARGETS = 20_000;
const MAX_DECODED_TARGET = 512;
const RETRY_AFTER_SECONDS = "5";

/** The strong entity tag of content with this SHA-256. */
export function etagOf(sha256: string): string {
  return `"sha256-${sha256}"`;
}

function sendBody(res: ServerResponse, status: number, body: string | Buffer, contentType: string, headers: OutgoingHttpHeaders = {}): void {
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  res.writeHead(status, { "x-content-type-options": "nosniff", "content-type": contentType, "content-length": bytes.length, "cache-control": "no-store", ...headers });
  if (res.req.method !== "HEAD") countBody(res, bytes.length);
  res.end(bytes);
}

function sendText(res: ServerResponse, status: number, detail?: string, headers: OutgoingHttpHeaders = {}): void {
  sendBody(res, status, `${status} ${STATUS_CODES[status] ?? ""}${detail ? `: ${detail}` : ""}\n`, "text/plain; charset=utf-8", headers);
}

/** Maps a listen() failure to an error naming the address. */
function listenError(err: unknown, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${host}:${port}`;
  if (code === "EADDRINUSE") return new UsageError(`cannot listen on ${where}: the address is already in use (choose another --port)`, { cause: err });
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN") return new UsageError(`cannot listen on ${where}: --host is not an address of this machine`, { cause: err });
  if (code === "EACCES") return new IoError(`cannot listen on ${where}: permission denied (ports below 1024 need privileges)`, { cause: err });
  return new IoError(`cannot listen on ${where}: ${(err as Error).message}`, { cause: err });
}

/**
 * Starts serving the mirror at `options.root`. Throws NotFoundError when the folder is missing or not
 * a mirror (no committed manifest), ManifestError when its manifest is invalid, UsageError/IoError when
 * the address cannot be used.
 */
export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const root = await realpath(options.root).catch((err: unknown) => {
    throw fsError(err, options.root);
  });
  const log = options.log;
  const live = await openLiveSnapshot(root, { log, ...(options.pollMs !== undefined && { pollMs: options.pollMs }) });
  const contents = createContentStore({ cacheBytes: options.cacheBytes, ...(options.shareVerdict && { onVerdict: options.shareVerdict }) });
  const statusCounter = createStatusCounter();
  const streamBudget = createStreamBudget();
  const listingCache = new WeakMap<Snapshot, Map<string, PublicDocument>>();
  let auth = options.auth;
  let closing = false;
  let inFlight = 0;
  let openConnections = 0;

  function counters(): ProcessCounters {
    const cache = contents.stats();
    const counts = live.counts();
    return {
      statuses: statusCounter.rows(),
      openConnections,
      cachedFiles: cache.cachedFiles,
      cachedBytes: cache.cachedBytes,
      hashChecks: cache.hashChecks,
      reloads: counts.reloads,
      loadFailures: counts.failures,
    };
  }

  function representation(sha256: string, size: number, contentType: string, lastModifiedMs: number | undefined, cacheControl: string): Representation {
    return { etag: etagOf(sha256), size, contentType, cacheControl, lastModifiedMs };
  }

  // A snapshot's entries never change what they describe, so each gets its representation once and
  // requests share it (with the response plan respond.ts keeps for it) instead of building headers anew.
  const representations = new WeakMap<SnapshotFile | HashEntry | PublicDocument, Representation>();

  function fileRepresentation(file: SnapshotFile): Representation {
    let rep = representations.get(file);
    if (rep === undefined) {
      rep = representation(file.sha256, file.size, contentTypeFor(file.path), file.mtimeMs, "no-cache");
      representations.set(file, rep);
    }
    return rep;
  }

  function hashRepresentation(sha256: string, entry: HashEntry): Representation {
    let rep = representations.get(entry);
    if (rep === undefined) {
      // Content-addressed: the bytes behind this URL never change, so caches may keep them.
      rep = representation(sha256, entry.size, OCTET_STREAM, undefined, "public, max-age=31536000, immutable");
      representations.set(entry, rep);
    }
    return rep;
  }

  function documentRepresentation(doc: PublicDocument): Representation {
    let rep = representations.get(doc);
    if (rep === undefined) {
      rep = representation(doc.sha256, doc.bytes.length, doc.contentType, doc.lastModifiedMs, "no-cache");
      representations.set(doc, rep);
    }
    return rep;
  }

  /** Answers with `rep` from bytes in memory: everything happens synchronously, the hot path for small files. */
  function answerFromMemory(req: IncomingMessage, res: ServerResponse, rep: Representation, data: Buffer): void {
    const plan = planResponse(req.headers, rep, Date.now());
    if (plan.status !== 200 && plan.status !== 206) {
      res.writeHead(plan.status, plan.headers);
      res.end();
      return;
    }
    sendBuffer(res, plan, data, req.method === "HEAD");
  }

  /** Answers with `rep`; bytes are fetched through `open` only when a body is due. */
  function answer(
    req: IncomingMessage,
    res: ServerResponse,
    rep: Representation,
    open: (check: boolean) => Promise<Content | undefined>,
    retry: (() => void | Promise<void>) | undefined,
  ): void | Promise<void> {
    const plan = planResponse(req.headers, rep, Date.now());
    if (plan.status !== 200 && plan.status !== 206) {
      res.writeHead(plan.status, plan.headers);
      res.end();
      return;
    }
    return fetchAndSend(req, res, plan, open, retry);
  }

  async function fetchAndSend(
    req: IncomingMessage,
    res: ServerResponse,
    plan: Extract<ReturnType<typeof planResponse>, { status: 200 | 206 }>,
    open: (check: boolean) => Promise<Content | undefined>,
    retry: (() => void | Promise<void>) | undefined,
  ): Promise<void> {
    let content = await open(false);
    if (content === undefined && retry !== undefined) {
      // The bytes are gone from where this snapshot expected them: a newer commit may have landed.
      const before = live.current();
      const next = await live.refresh();
      if (next !== before) return retry();
      content = await open(true);
    }
    if (content === undefined) {
      log.warn({ event: "serve:unavailable", path: req.url?.slice(0, MAX_LOGGED_TARGET), version: live.current().version }, "no copy with the listed bytes was found");
      return sendText(res, 503, "the listed bytes are not available right now", { "retry-after": RETRY_AFTER_SECONDS });
    }
    return sendPlanned(res, plan, content, req.method === "HEAD", streamBudget);
  }

  function serveFile(req: IncomingMessage, res: ServerResponse, snapshot: Snapshot, file: SnapshotFile, retried: boolean): void | Promise<void> {
    const rep = fileRepresentation(file);
    const inMemory = contents.cached(file.sha256);
    if (inMemory !== undefined) return answerFromMemory(req, res, rep, inMemory);
    // A file the load could not vouch for (changed since the commit) is hashed on its first request
    // whatever a refresh would find, so it is checked at once rather than after a refresh; the hash
    // still decides, and a mismatch still refreshes and routes again.
    const unvouched = file.trusted === undefined;
    return answer(req, res, rep, (check) => contents.forFile(snapshot, file, check || retried || unvouched), retried ? undefined : () => route(req, res, live.current(), true));
  }

  function serveHash(req: IncomingMessage, res: ServerResponse, snapshot: Snapshot, sha256: string, entry: HashEntry, retried: boolean): void | Promise<void> {
    const rep = hashRepresentation(sha256, entry);
    const inMemory = contents.cached(sha256);
    if (inMemory !== undefined) return answerFromMemory(req, res, rep, inMemory);
    return answer(req, res, rep, (check) => contents.forHash(snapshot, sha256, entry, check || retried), retried ? undefined : () => route(req, res, live.current(), true));
  }

  function serveDocument(req: IncomingMessage, res: ServerResponse, doc: PublicDocument): void {
    answerFromMemory(req, res, documentRepresentation(doc), doc.bytes);
  }

  function listingDocument(snapshot: Snapshot, dir: string, json: boolean): PublicDocument | undefined {
    let cache = listingCache.get(snapshot);
    if (cache === undefined) {
      cache = new Map();
      listingCache.set(snapshot, cache);
    }
    const key = `${json ? "j" : "h"}${dir}`;
    let doc = cache.get(key);
    if (doc === undefined) {
      const entries = listFolder(snapshot, dir);
      if (entries === undefined) return undefined;
      const bytes = Buffer.from(json ? renderJsonListing(entries) : renderHtmlListing(dir, entries), "utf8");
      doc = { bytes, sha256: createHash("sha256").update(bytes).digest("hex"), contentType: json ? "application/json" : "text/html; charset=utf-8", lastModifiedMs: snapshot.createdMs };
      cache.set(key, doc);
    }
    return doc;
  }

  // Raw targets with escapes (a '%20' in most real names) that parsed to a listed file, for this
  // snapshot: parsing is a pure function of the raw string, and clients ask for the same targets again.
  let decoded: { snapshot: Snapshot; files: Map<string, SnapshotFile> } = { snapshot: live.current(), files: new Map() };

  function decodedFiles(snapshot: Snapshot): Map<string, SnapshotFile> {
    if (decoded.snapshot !== snapshot) decoded = { snapshot, files: new Map() };
    return decoded.files;
  }

  /** Dispatches an authorised GET/HEAD against `snapshot`; `retried` after a snapshot swap (never twice). Synchronous when nothing needs I/O. */
  function route(req: IncomingMessage, res: ServerResponse, snapshot: Snapshot, retried: boolean): void | Promise<void> {
    const raw = req.url ?? "";
    // Fast path: a target with nothing to decode that names a listed file as it is, or one that parsed
    // to a listed file before (decodedFiles). Only safe paths are ever listed, so a hit needs no
    // further checks; anything else takes the full parse below.
    if (raw.charCodeAt(0) === 47) {
      const listed = RAW_SPECIAL.test(raw) ? decodedFiles(snapshot).get(raw) : snapshot.files.get(raw.slice(1));
      if (listed !== undefined) return serveFile(req, res, snapshot, listed, retried);
    }
    const parsed = parseRequestTarget(raw);
    if (!parsed.ok) return sendText(res, 400, parsed.reason);
    const { path, slash, query } = parsed.value;
    if (path === METADATA_DIR || path.startsWith(`${METADATA_DIR}/`)) {
      if (slash) return sendText(res, 404);
      if (path === ROUTES.metrics) return serveMetrics(res, snapshot);
      if (path.startsWith(ROUTES.byHash)) {
        const sha256 = path.slice(ROUTES.byHash.length);
        const entry = SHA256_HEX.test(sha256) ? snapshot.byHash.get(sha256) : undefined;
        if (entry === undefined) return sendText(res, 404);
        return serveHash(req, res, snapshot, sha256, entry, retried);
      }
      const doc = path.indexOf("/", METADATA_DIR.length + 1) < 0 ? snapshot.documents.get(path.slice(METADATA_DIR.length + 1)) : undefined;
      if (doc === undefined) return sendText(res, 404);
      return serveDocument(req, res, doc);
    }
    const file = path === "" ? undefined : snapshot.files.get(path);
    if (file !== undefined) {
      if (slash) return sendText(res, 404);
      if (raw.length <= MAX_DECODED_TARGET && raw.indexOf("?") < 0) {
        const known = decodedFiles(snapshot);
        if (known.size >= MAX_DECODED_TARGETS) known.clear();
        known.set(raw, file);
      }
      return serveFile(req, res, snapshot, file, retried);
    }
    if (!options.listing || !snapshot.dirs.has(path)) return sendText(res, 404);
    if (!slash) return sendText(res, 301, undefined, { location: `/${encodePath(path)}/${query === "" ? "" : `?${query}`}` });
    const json = new URLSearchParams(query).get("format") === "json";
    const doc = listingDocument(snapshot, path, json);
    if (doc === undefined) return sendText(res, 404);
    return serveDocument(req, res, doc);
  }

  async function serveMetrics(res: ServerResponse, snapshot: Snapshot): Promise<void> {
    const local = counters();
    const gathered = options.gatherCounters === undefined ? { counters: local, processes: 1 } : await options.gatherCounters(local);
    const body = renderMetrics({ snapshot, nowMs: Date.now(), healthy: healthOf(snapshot, live.health(), options.maxAgeMs, Date.now()).status === 200, ...gathered });
    sendBody(res, 200, body, METRICS_CONTENT_TYPE);
  }

  async function serveHealth(res: ServerResponse): Promise<void> {
    await live.refresh();
    const report = healthOf(live.current(), live.health(), options.maxAgeMs, Date.now());
    sendBody(res, report.status, report.body, "application/json");
  }

  async function authenticated(req: IncomingMessage, res: ServerResponse, check: Authenticator, setUser: (user: string) => void): Promise<void> {
    const user = await check.authenticate(req.headers.authorization);
    if (user === undefined) return sendText(res, 401, "credentials required", { "www-authenticate": check.challenge });
    setUser(user);
    return route(req, res, live.current(), false);
  }

  function handle(req: IncomingMessage, res: ServerResponse, setUser: (user: string) => void): void | Promise<void> {
    if (closing) res.setHeader("connection", "close");
    if (options.allow !== undefined && !options.allow.allows(req.socket.remoteAddress)) return sendText(res, 403, "this address is not allowed");
    if (req.method !== "GET" && req.method !== "HEAD") return sendText(res, 405, undefined, { allow: "GET, HEAD" });
    // Health answers without credentials, so load balancers and monitors need none.
    if (req.url === `/${ROUTES.health}` || req.url?.startsWith(`/${ROUTES.health}?`)) return serveHealth(res);
    if (auth !== undefined) return authenticated(req, res, auth, setUser);
    return route(req, res, live.current(), false);
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    // Read now: once the socket is gone (a client cut off) its address is too.
    const client = req.socket.remoteAddress;
    inFlight += 1;
    let user: string | undefined;
    req.on("error", () => undefined);
    res.on("error", () => undefined);
    res.on("close", () => {
      inFlight -= 1;
      const aborted = !res.writableFinished;
      const bytes = bodyBytes(res);
      statusCounter.record(res.statusCode, bytes);
      options.access?.({
        client,
        method: req.method,
        path: (req.url ?? "").slice(0, MAX_LOGGED_TARGET),
        status: res.statusCode,
        bytes,
        ms: Math.round((performance.now() - started) * 10) / 10,
        ...(user !== undefined && { user }),
        ...(aborted && { aborted }),
      });
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    const fail = (err: unknown) => {
      log.error({ event: "serve:error", path: req.url?.slice(0, MAX_LOGGED_TARGET), err: err instanceof Error ? (err.stack ?? err.message) : String(err) }, "request failed");
      if (!res.headersSent) sendText(res, 500);
      else res.destroy();
    };
    try {
      handle(req, res, (u) => {
        user = u;
      })?.catch(fail);
    } catch (err) {
      fail(err);
    }
  };

  const serverOptions = {
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    // Timeouts are enforced by a sweep; Node's default of 30 s would let a slow client outstay them by that much.
    connectionsCheckingInterval: Math.min(1000, options.headersTimeoutMs),
    // Old agents send HTTP/1.0 without Host; this server never looks at it.
    requireHostHeader: false,
  };
  const server: Server | HttpsServer = options.tls
    ? // A TLS handshake gets no longer than request headers do (Node's default is two minutes).
      createHttpsServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key, handshakeTimeout: options.headersTimeoutMs }, onRequest)
    : createHttpServer(serverOptions, onRequest);
  server.maxConnections = options.maxConnections;
  server.setTimeout(options.idleTimeoutMs);
  let dropped = 0;
  let dropLogged = 0;
  server.on("drop", () => {
    dropped += 1;
    if (Date.now() - dropLogged > 10_000) {
      dropLogged = Date.now();
      log.warn({ event: "serve:connections-dropped", dropped, maxConnections: options.maxConnections }, "connection limit reached; new connections are dropped");
    }
  });
  server.on("connection", (socket: Socket) => {
    openConnections += 1;
    socket.once("close", () => {
      openConnections -= 1;
    });
  });
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    // Node's parser refused the request (oversized or malformed headers) or a client was too slow.
    const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
    statusCounter.record(status, 0);
    options.access?.({ client: socket.remoteAddress, method: undefined, path: "", status, bytes: 0, ms: 0 });
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\nX-Content-Type-Options: nosniff\r\n\r\n`);
  });
  server.on("tlsClientError", (_err: Error, socket: Socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    const onError = (err: unknown) => {
      live.close();
      reject(listenError(err, options.host, options.port));
    };
    server.once("error", onError);
    // A deeper accept queue than Node's 511, so a thousand clients starting at once are not turned away (the kernel caps it at somaxconn).
    server.listen({ port: options.port, host: options.host, backlog: 4096 }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  // After listening, errors are per connection (EMFILE on accept, say): report them, keep serving.
  server.on("error", (err: Error) => log.error({ event: "serve:server-error", err: err.message }, "server error"));

  const address = server.address() as AddressInfo;
  const hostInUrl = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closed: Promise<void> | undefined;

  return {
    url: `${options.tls ? "https" : "http"}://${hostInUrl}:${address.port}/`,
    address,
    live,
    setTls(tls) {
      if (options.tls && "setSecureContext" in server) server.setSecureContext({ cert: tls.cert, key: tls.key });
    },
    setAuth(next) {
      auth = next;
    },
    counters,
    learnVerdict: (identity, sha256) => contents.learn(identity, sha256),
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        live.close();
        const cut = setTimeout(() => server.closeAllConnections(), options.shutdownTimeoutMs);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
        if (inFlight === 0) server.closeAllConnections();
      });
      return closed;
    },
  };
}
