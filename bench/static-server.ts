// Loopback static file server for the sync bench: one switchable folder served nginx-style (validators, ranges, autoindex), every request counted.
import { createReadStream } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { pipeline } from "node:stream/promises";

/** What the server did since the last `takeCounts()`. */
export interface ServerCounts {
  requests: number;
  byMethod: Record<string, number>;
  byStatus: Record<string, number>;
  /** Directory listings served (rclone's http backend needs one per folder). */
  listings: number;
  /** Response body bytes sent: file contents and listing pages, not headers. */
  bodyBytes: number;
  /** TCP connections accepted, to show how much each client reuses them. */
  connections: number;
}

export interface StaticServer {
  /** Base URL, ending in "/". */
  url: string;
  /** The folder served now; switching it takes effect on the next request, without a restart. */
  root: string;
  /** Returns the counts so far and starts new ones, so each measured run gets its own. */
  takeCounts(): ServerCounts;
  close(): Promise<void>;
}

// Small files are read whole: one read beats a stream's setup; large ones stream so memory stays flat.
const WHOLE_READ_LIMIT = 1024 * 1024;
const STREAM_CHUNK = 1024 * 1024;

function emptyCounts(): ServerCounts {
  return { requests: 0, byMethod: {}, byStatus: {}, listings: 0, bodyBytes: 0, connections: 0 };
}

/** Decoded path segments of a request target, or undefined when malformed or leaving the root. */
function requestSegments(target: string): { segments: string[]; trailingSlash: boolean } | undefined {
  const raw = target.split("?")[0] ?? "";
  if (!raw.startsWith("/")) return undefined;
  const parts = raw.slice(1).split("/");
  const trailingSlash = parts.length > 0 && parts[parts.length - 1] === "";
  const segments: string[] = [];
  for (const part of parts) {
    if (part === "") continue;
    let name: string;
    try {
      name = decodeURIComponent(part);
    } catch {
      return undefined;
    }
    if (name === "." || name === ".." || name.includes("/") || name.includes("\0")) return undefined;
    segments.push(name);
  }
  return { segments, trailingSlash };
}

/** A single byte range as servers honour it; undefined means "send the whole file" (multi-ranges included). */
function parseRange(value: string | undefined, size: number): { start: number; end: number } | "unsatisfiable" | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(value?.trim() ?? "");
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    // Suffix form: the last N bytes.
    const n = Number(m[2]);
    if (n === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** nginx's autoindex date column: 28-Nov-2025 13:37. */
function autoindexDate(d: Date): string {
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(d.getUTCDate())}-${months[d.getUTCMonth()]}-${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
}

/** An nginx autoindex page. Dot entries are left out, as nginx does, so listing clients skip .update-mirror/. */
async function listingPage(dir: string, urlPath: string): Promise<Buffer> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith("."));
  const rows = await Promise.all(
    entries.map(async (e) => {
      const info = await stat(path.join(dir, e.name));
      const isDir = info.isDirectory();
      return { name: e.name, isDir, info };
    }),
  );
  rows.sort((a, b) => (a.isDir === b.isDir ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.isDir ? -1 : 1));
  const title = `Index of ${escapeHtml(urlPath)}`;
  const lines = [`<html>\n<head><title>${title}</title></head>\n<body>\n<h1>${title}</h1><hr><pre><a href="../">../</a>`];
  for (const r of rows) {
    const shown = r.isDir ? `${r.name}/` : r.name;
    const href = `${encodeURIComponent(r.name)}${r.isDir ? "/" : ""}`;
    const pad = " ".repeat(Math.max(1, 51 - shown.length));
    lines.push(`<a href="${href}">${escapeHtml(shown)}</a>${pad}${autoindexDate(r.info.mtime)} ${(r.isDir ? "-" : String(r.info.size)).padStart(19)}`);
  }
  lines.push("</pre><hr></body>\n</html>\n");
  return Buffer.from(lines.join("\n"), "utf8");
}

/** Starts the server on 127.0.0.1 at a free port, serving `root`. */
export async function startStaticServer(root: string): Promise<StaticServer> {
  let counts = emptyCounts();
  const state = { root };

  function finish(res: ServerResponse, status: number, headers: OutgoingHttpHeaders, body?: Buffer): void {
    counts.byStatus[status] = (counts.byStatus[status] ?? 0) + 1;
    res.writeHead(status, headers);
    if (body !== undefined && body.length > 0) counts.bodyBytes += body.length;
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    counts.requests += 1;
    counts.byMethod[method] = (counts.byMethod[method] ?? 0) + 1;
    const target = requestSegments(req.url ?? "");
    if (!target) return finish(res, 400, { "content-type": "text/plain" }, Buffer.from("bad path\n"));
    if (method !== "GET" && method !== "HEAD") return finish(res, 405, { allow: "GET, HEAD" });
    const head = method === "HEAD";
    const file = path.join(state.root, ...target.segments);
    const info = await stat(file).catch(() => undefined);
    if (!info) return finish(res, 404, { "content-type": "text/plain" }, head ? undefined : Buffer.from("not found\n"));

    if (info.isDirectory()) {
      const urlPath = `/${target.segments.map(encodeURIComponent).join("/")}${target.segments.length > 0 ? "/" : ""}`;
      if (!target.trailingSlash && target.segments.length > 0) return finish(res, 301, { location: urlPath });
      const page = await listingPage(file, `/${target.segments.join("/")}${target.segments.length > 0 ? "/" : ""}`);
      counts.listings += 1;
      return finish(res, 200, { "content-type": "text/html", "content-length": page.length }, head ? undefined : page);
    }
    if (!info.isFile()) return finish(res, 403, {});

    // nginx's validators: hex mtime and size, so hard-linked (unchanged) files keep their ETag across versions.
    const etag = `"${Math.floor(info.mtimeMs).toString(16)}-${info.size.toString(16)}"`;
    const lastModified = info.mtime.toUTCString();
    const validators = { etag, "last-modified": lastModified };
    const inm = req.headers["if-none-match"];
    const ims = req.headers["if-modified-since"];
    const notModified =
      inm !== undefined ? inm.split(",").some((t) => t.trim() === etag || t.trim() === "*") : ims !== undefined && Date.parse(ims) >= Math.floor(info.mtimeMs / 1000) * 1000;
    if (notModified) return finish(res, 304, validators);

    const range = parseRange(req.headers.range, info.size);
    if (range === "unsatisfiable") return finish(res, 416, { "content-range": `bytes */${info.size}` });
    const start = range?.start ?? 0;
    const end = range?.end ?? info.size - 1;
    const length = Math.max(0, end - start + 1);
    const headers: OutgoingHttpHeaders = { "content-type": "application/octet-stream", "content-length": length, "accept-ranges": "bytes", ...validators };
    if (range) headers["content-range"] = `bytes ${start}-${end}/${info.size}`;
    const status = range ? 206 : 200;
    if (head || length === 0) return finish(res, status, headers);
    if (info.size <= WHOLE_READ_LIMIT) {
      const content = await readFile(file);
      return finish(res, status, headers, range ? content.subarray(start, end + 1) : content);
    }
    counts.byStatus[status] = (counts.byStatus[status] ?? 0) + 1;
    res.writeHead(status, headers);
    const stream = createReadStream(file, { start, end, highWaterMark: STREAM_CHUNK });
    // Counted as it goes, so a client that hangs up mid-file is charged only what it was sent.
    stream.on("data", (chunk) => {
      counts.bodyBytes += chunk.length;
    });
    await pipeline(stream, res);
  }

  const server = createServer((req, res) => {
    // A client hanging up mid-response is normal here (a tool giving up or cancelling), not a bench error.
    res.on("error", () => undefined);
    req.on("error", () => undefined);
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  // Clients keep connections across many files; the default 5 s idle limit could cut one between phases.
  server.keepAliveTimeout = 60_000;
  server.on("connection", () => {
    counts.connections += 1;
  });
  server.on("clientError", (_err, socket) => socket.destroy());
  server.listen(0, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/`,
    get root() {
      return state.root;
    },
    set root(dir: string) {
      state.root = dir;
    },
    takeCounts() {
      const taken = counts;
      counts = emptyCounts();
      return taken;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
