// A fake vendor HTTP server for tests: serves a folder as-is, with validators, ranges, directory listings in a chosen server's style, and injectable faults.
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, STATUS_CODES, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { dirname, join, sep } from "node:path";
import { type SecretKey, loadPublicKey, loadSecretKey, writeKeyPair } from "../../src/crypto/keys.js";
import type { PublicKey } from "../../src/crypto/minisign.js";
import { type IndexResult, indexTree } from "../../src/mirror/index-tree.js";
import { METADATA_DIR } from "../../src/mirror/layout.js";
import type { TagRule } from "../../src/mirror/tags.js";
import { type ListingStyle, renderListing } from "./listing-styles.js";

/** What to do wrong, instead of serving the file properly. `times` limits it to the first N matching requests. */
export type Fault = { times?: number } & (
  /** Destroy the socket before any header is sent. */
  | { kind: "reset" }
  /** Answer with this status (403 with an HTML page, 429/503 with Retry-After when `retryAfter` is given). */
  | { kind: "status"; code: number; retryAfter?: number }
  /** Announce the full Content-Length, send half, then destroy the socket. */
  | { kind: "truncate" }
  /** Send the file followed by extra bytes, chunked, without Content-Length. */
  | { kind: "longer" }
  /** Send the right number of bytes with some of them flipped. */
  | { kind: "wrongBytes" }
  /** Answer a Range request with 200 and the whole file. */
  | { kind: "ignoreRange" }
  /** Send half of the body, then go silent until the client gives up or the server closes. */
  | { kind: "stall" }
  /** Send the body in `chunkBytes` pieces (default 4096) with `delayMs` between them. */
  | { kind: "slow"; delayMs: number; chunkBytes?: number }
  /** Answer `code` (default 302) with `Location: to` (absolute or relative) instead of the file. */
  | { kind: "redirect"; to: string; code?: number }
);

export interface LoggedRequest {
  method: string;
  /** Percent-decoded path relative to the root, without the leading '/'. */
  path: string;
  headers: IncomingHttpHeaders;
}

export interface VendorServer {
  /** Base URL, ending in "/". */
  url: string;
  /** Every request received, in order (clear it with `requests.length = 0`). */
  requests: LoggedRequest[];
  /** Sets (or, with undefined, clears) the fault for one decoded path, or "*" for every path without its own. */
  setFault(pathOrStar: string, fault: Fault | undefined): void;
  /** Stops listening and destroys every open connection, which also ends stalled responses. */
  close(): Promise<void>;
}

const HTML_403 = `<!DOCTYPE html>
<html><head><title>403 Forbidden</title></head>
<body><h1>Forbidden</h1><p>You don't have permission to access this resource.</p></body></html>
`;
const TRUNCATE_AFTER_MS = 300;
// Recognisable bytes, so a test failing on them shows where they came from.
const EXTRA_BYTES = Buffer.from("<!-- extra bytes a broken server appended -->\n");

/** The decoded relative path of a request URL, or undefined when it is malformed or tries to leave the root. */
function decodeRequestPath(url: string): string | undefined {
  const raw = url.split("?")[0] ?? "";
  if (!raw.startsWith("/")) return undefined;
  const segments: string[] = [];
  for (const part of raw.slice(1).split("/")) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(part);
    } catch {
      return undefined;
    }
    // An encoded separator would change the segmentation after decoding, and '..' leaves the root.
    if (decoded === ".." || decoded === "." || decoded.includes("/") || decoded.includes("\\") || decoded.includes("\0")) return undefined;
    segments.push(decoded);
  }
  return segments.join("/");
}

/** Parses a single `bytes=N-` or `bytes=N-M`; undefined for anything else (served as a plain 200, as servers do). */
function parseRange(value: string | undefined): { start: number; end?: number } | undefined {
  const match = /^bytes=(\d+)-(\d*)$/.exec(value?.trim() ?? "");
  if (!match) return undefined;
  return { start: Number(match[1]), ...(match[2] !== "" && { end: Number(match[2]) }) };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts a server on 127.0.0.1 at a free port, serving the files under `root` exactly as they are on disk. */
export async function startVendorServer(root: string, options: { tls?: { cert: string; key: string }; listing?: ListingStyle | false } = {}): Promise<VendorServer> {
  const listingStyle = options.listing ?? "nginx";
  const requests: LoggedRequest[] = [];
  const faults = new Map<string, { fault: Fault; left: number }>();
  let closing = false;

  /** The fault that applies to this request, counting it against `times`. */
  function takeFault(path: string): Fault | undefined {
    const entry = faults.get(path) ?? faults.get("*");
    if (!entry || entry.left <= 0) return undefined;
    entry.left -= 1;
    return entry.fault;
  }

  function sendStatus(res: ServerResponse, fault: Extract<Fault, { kind: "status" }>): void {
    const html = fault.code === 403;
    const body = Buffer.from(html ? HTML_403 : `${fault.code} ${STATUS_CODES[fault.code] ?? "Error"}\n`);
    const headers: OutgoingHttpHeaders = { "content-type": html ? "text/html; charset=utf-8" : "text/plain", "content-length": body.length };
    if (fault.retryAfter !== undefined) headers["retry-after"] = String(fault.retryAfter);
    res.writeHead(fault.code, headers);
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const path = decodeRequestPath(req.url ?? "");
    requests.push({ method, path: path ?? req.url ?? "", headers: req.headers });
    if (path === undefined) {
      res.writeHead(400, { "content-type": "text/plain" }).end("bad path\n");
      return;
    }
    if (method !== "GET" && method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    const fault = takeFault(path);
    if (fault?.kind === "reset") {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "status") {
      sendStatus(res, fault);
      return;
    }
    if (fault?.kind === "redirect") {
      res.writeHead(fault.code ?? 302, { location: fault.to, "content-type": "text/plain", "content-length": 9 }).end("moved on\n");
      return;
    }

    const file = join(root, ...path.split("/"));
    if (file !== root && !file.startsWith(root.endsWith(sep) ? root : `${root}${sep}`)) {
      res.writeHead(400).end();
      return;
    }
    const info = await stat(file).catch(() => undefined);
    if (info?.isDirectory() && listingStyle !== false && (path === "" || path.endsWith("/"))) {
      const page = Buffer.from(await renderListing(listingStyle, file, `/${path}`));
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "content-length": page.length });
      res.end(method === "HEAD" ? undefined : page);
      return;
    }
    if (!info?.isFile()) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    const content = await readFile(file);
    const etag = `"${createHash("sha256").update(content).digest("hex")}"`;
    const lastModified = info.mtime.toUTCString();
    const headers: OutgoingHttpHeaders = { "content-type": "application/octet-stream", etag, "last-modified": lastModified, "accept-ranges": "bytes" };

    const ifNoneMatch = req.headers["if-none-match"];
    const ifModifiedSince = req.headers["if-modified-since"];
    const notModified =
      ifNoneMatch !== undefined
        ? ifNoneMatch.split(",").some((tag) => tag.trim() === etag || tag.trim() === "*")
        : ifModifiedSince !== undefined && Date.parse(ifModifiedSince) >= Math.floor(info.mtimeMs / 1000) * 1000;
    if (notModified) {
      res.writeHead(304, { etag, "last-modified": lastModified }).end();
      return;
    }

    let status = 200;
    let body = content;
    // If-Range: the range applies only while the client's validator still names this content.
    const ifRange = req.headers["if-range"];
    const rangeValid = ifRange === undefined || ifRange === etag || ifRange === lastModified;
    const range = fault?.kind === "ignoreRange" || !rangeValid ? undefined : parseRange(req.headers.range);
    if (range) {
      const end = Math.min(range.end ?? content.length - 1, content.length - 1);
      if (range.start >= content.length || end < range.start) {
        res.writeHead(416, { "content-range": `bytes */${content.length}` }).end();
        return;
      }
      status = 206;
      body = content.subarray(range.start, end + 1);
      headers["content-range"] = `bytes ${range.start}-${end}/${content.length}`;
    }

    if (fault?.kind === "longer") {
      // No Content-Length: Node sends it chunked, so only the byte count can tell it is too long.
      res.writeHead(status, headers);
      if (method === "HEAD") {
        res.end();
        return;
      }
      res.write(body);
      res.end(EXTRA_BYTES);
      return;
    }
    if (fault?.kind === "wrongBytes" && body.length > 0) {
      body = Buffer.from(body);
      const at = Math.floor(body.length / 2);
      body[at] = (body[at] ?? 0) ^ 0xff;
    }
    headers["content-length"] = body.length;
    res.writeHead(status, headers);
    if (method === "HEAD") {
      res.end();
      return;
    }

    const half = body.subarray(0, Math.floor(body.length / 2));
    if (fault?.kind === "truncate") {
      // The cut comes a moment after the half, as on a long transfer whose reader kept up: undici
      // drops body bytes still unread when the socket errors, so a cut arriving with the data
      // would leave the client nothing to resume from.
      res.write(half, () => {
        const timer = setTimeout(() => req.socket.destroy(), TRUNCATE_AFTER_MS);
        res.once("close", () => clearTimeout(timer));
      });
      return;
    }
    if (fault?.kind === "stall") {
      res.write(half);
      await once(res, "close");
      return;
    }
    if (fault?.kind === "slow") {
      const step = Math.max(1, fault.chunkBytes ?? 4096);
      for (let at = 0; at < body.length; at += step) {
        if (closing || res.destroyed) return;
        res.write(body.subarray(at, at + step));
        await delay(fault.delayMs);
      }
      res.end();
      return;
    }
    res.end(body);
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    // A client that goes away mid-response is a normal event here, not a test failure.
    res.on("error", () => undefined);
    req.on("error", () => undefined);
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  };
  const server = options.tls ? createHttpsServer(options.tls, onRequest) : createServer(onRequest);
  server.on("clientError", (_err, socket) => socket.destroy());
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;

  return {
    // The test certificate names 127.0.0.1 in its SAN, so TLS verifies against the plain address.
    url: `${options.tls ? "https" : "http"}://127.0.0.1:${port}/`,
    requests,
    setFault(pathOrStar, fault) {
      if (fault === undefined) faults.delete(pathOrStar);
      else faults.set(pathOrStar, { fault, left: fault.times ?? Number.POSITIVE_INFINITY });
    },
    async close() {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

export interface UpstreamOptions {
  /** Sign the manifest with this key. */
  signingKey?: SecretKey;
  tagRules?: readonly TagRule[];
  expires?: Date;
  /** The tree given is the whole payload: every other file (outside .update-mirror/) is deleted first. */
  exact?: boolean;
  /** Payload paths to delete before indexing. */
  remove?: readonly string[];
}

/**
 * Makes `dir` a vendor folder that publishes a manifest: writes `tree` (relative path -> content),
 * then runs the real `index` logic, so the version grows by one with every call.
 */
export async function makeUpstream(dir: string, tree: Record<string, string | Buffer>, opts: UpstreamOptions = {}): Promise<IndexResult> {
  await mkdir(dir, { recursive: true });
  if (opts.exact) {
    for (const name of await readdir(dir)) if (name !== METADATA_DIR) await rm(join(dir, name), { recursive: true, force: true });
  }
  for (const path of opts.remove ?? []) await rm(join(dir, ...path.split("/")), { force: true });
  for (const [path, content] of Object.entries(tree)) {
    const file = join(dir, ...path.split("/"));
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, content);
  }
  return indexTree(dir, {
    workers: 1,
    ...(opts.signingKey && { signingKey: opts.signingKey }),
    ...(opts.tagRules && { tagRules: opts.tagRules }),
    ...(opts.expires && { expires: opts.expires }),
  });
}

/** A fresh signing key pair written at `prefix`.key/.pub, loaded back as the CLI would load it. */
export async function makeKeyPair(prefix: string): Promise<{ secretKey: SecretKey; publicKey: PublicKey; keyId: string }> {
  const { secretPath, publicPath, keyId } = await writeKeyPair(prefix, {});
  return { secretKey: await loadSecretKey(secretPath), publicKey: await loadPublicKey(publicPath), keyId };
}
