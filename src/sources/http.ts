// HTTP(S) source: an upstream that publishes an update-mirror manifest at its root (a vendor using `index`, or another mirror), or else a crawlable directory listing.
import { createHash } from "node:crypto";
import type { Dispatcher } from "undici";
import { eachLimit } from "../core/each-limit.js";
import { InputRefusedError, IntegrityError, NotFoundError, SourceError, UpdateMirrorError } from "../core/errors.js";
import { MAX_MANIFEST_BYTES, parseManifest } from "../core/manifest.js";
import { LISTING_LIMITS, type ManifestProbe, type OpenedFile, type OpenOptions, type ProbeOptions, type Source, type SourceEntry } from "../core/source.js";
import { MANIFEST_NAME, METADATA_DIR, SIGNATURE_NAME } from "../mirror/layout.js";
import type { HttpOptions } from "../net/http-options.js";
import { comparePaths, pathSetConflicts, unsafePathReason } from "../core/safe-path.js";
import { type ListingLink, parseListing } from "./http-listing.js";
import { readCapped } from "./read-capped.js";

type Body = Dispatcher.ResponseData["body"];

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTIONS = 5;
// Crawling a listing: folder pages (or HEADs) at once; the depth and entry limits are LISTING_LIMITS.
const LISTING_CONCURRENCY = 4;
const MAX_LISTING_PAGE_BYTES = 32 * 1024 * 1024;

/** The URL as it may be shown: no user name or password. */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  copy.username = "";
  copy.password = "";
  return copy.href;
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds from now. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === "") return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

function header(headers: Dispatcher.ResponseData["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Yields the body, failing as soon as it grows past `limit` (a longer body is cut and refused) or the
 * request has run past `deadline` (a trickle the idle timeout never catches). Checking the clock per
 * chunk costs nothing, where a timer and an AbortSignal per request cost measurably at 40,000 files.
 */
async function* bounded(body: Body, limit: number | undefined, deadline: number, what: string, label: string): AsyncGenerator<Uint8Array> {
  let total = 0;
  try {
    for await (const chunk of body) {
      total += chunk.length;
      if (limit !== undefined && total > limit) throw new IntegrityError(`${what}: the server sent more bytes than expected (${limit})`);
      if (performance.now() > deadline) throw new SourceError(`${label}: ${what}: the transfer took longer than the total timeout`);
      yield chunk as Uint8Array;
    }
  } catch (err) {
    if (err instanceof UpdateMirrorError) throw err;
    throw new SourceError(`${label}: ${what}: transfer failed (${(err as Error).message})`, { cause: err });
  } finally {
    body.destroy();
  }
}

function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

export function createHttpSource(base: URL, dispatcher: Dispatcher, options: HttpOptions): Source {
  const root = new URL(base.href.endsWith("/") ? base.href : `${base.href}/`);
  const label = redactUrl(root);

  /**
   * One GET, following up to MAX_REDIRECTIONS redirects (CDNs in front of vendors use them). Our own
   * loop rather than undici's redirect interceptor: that wraps every request in handlers, which at
   * tens of thousands of small files costs more than the transfers themselves.
   */
  async function get(path: string, headers: Record<string, string>, signal: AbortSignal | undefined, method: "GET" | "HEAD" = "GET", landed?: { url?: URL }): Promise<Dispatcher.ResponseData> {
    let origin = root.origin;
    let target = `${root.pathname}${path}`;
    for (let hops = 0; ; hops++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await dispatcher.request({
          origin,
          path: target,
          method,
          headers: { "user-agent": options.userAgent, ...headers },
          headersTimeout: options.headersTimeoutMs,
          bodyTimeout: options.idleTimeoutMs,
          ...(signal && { signal }),
        });
      } catch (err) {
        const code = (err as { code?: string }).code ?? "";
        throw new SourceError(`${label}: ${path}: ${code ? `${code}: ` : ""}${(err as Error).message}`, { cause: err });
      }
      const location = REDIRECTS.has(res.statusCode) ? header(res.headers, "location") : undefined;
      if (location === undefined) {
        if (landed) landed.url = new URL(`${origin}${target}`);
        return res;
      }
      await res.body.dump().catch(() => undefined);
      if (hops >= MAX_REDIRECTIONS) throw new SourceError(`${label}: ${path}: more than ${MAX_REDIRECTIONS} redirects`, { retryable: false });
      let next: URL;
      try {
        next = new URL(location, `${origin}${target}`);
      } catch {
        throw new SourceError(`${label}: ${path}: redirected to an invalid location`, { retryable: false });
      }
      if (next.protocol !== "http:" && next.protocol !== "https:") throw new SourceError(`${label}: ${path}: refused a redirect to a ${next.protocol} URL`, { retryable: false });
      // Credentials in a URL would end up in logs; the source's own URL may not carry them either.
      if (next.username !== "" || next.password !== "") throw new SourceError(`${label}: ${path}: refused a redirect to a URL with credentials in it`, { retryable: false });
      origin = next.origin;
      target = `${next.pathname}${next.search}`;
    }
  }

  /** Turns a non-success status into our error, after draining the body so the connection is reused. */
  async function failFor(res: Dispatcher.ResponseData, path: string): Promise<never> {
    await res.body.dump().catch(() => undefined);
    if (res.statusCode === 404 || res.statusCode === 410) throw new NotFoundError(`${label}: ${path}: HTTP ${res.statusCode}`);
    const wait = res.statusCode === 429 || res.statusCode === 503 ? retryAfterMs(res.headers["retry-after"]) : undefined;
    throw new SourceError(`${label}: ${path}: HTTP ${res.statusCode}`, wait === undefined ? {} : { retryAfterMs: wait });
  }

  const manifestPath = `${METADATA_DIR}/${MANIFEST_NAME}`;

  /** The children a folder's listing page links to; `rel` is the folder's path ("" for the root). */
  async function readListingPage(rel: string, signal: AbortSignal | undefined): Promise<ListingLink[]> {
    const path = rel === "" ? "" : `${encodePath(rel)}/`;
    const landed: { url?: URL } = {};
    const res = await get(path, {}, signal, "GET", landed);
    if (res.statusCode !== 200) return failFor(res, `${rel}/`);
    const type = header(res.headers, "content-type") ?? "";
    if (!/^text\/html\b|^application\/xhtml\+xml\b/i.test(type)) {
      res.body.destroy();
      throw new SourceError(`${label}: ${rel}/ is not a directory listing (Content-Type ${type || "none"}), and the source publishes no update-mirror manifest`, { retryable: false });
    }
    const html = await readCapped(res.body, MAX_LISTING_PAGE_BYTES, `${label}${rel}/`).catch((err: unknown) => {
      if (err instanceof UpdateMirrorError) throw err;
      throw new SourceError(`${label}: ${rel}/: transfer failed (${(err as Error).message})`, { cause: err });
    });
    return parseListing(html.toString("utf8"), landed.url ?? new URL(path, root));
  }

  /** Size and Last-Modified of one file: HEAD, or a one-byte range where HEAD is not allowed. */
  async function statFile(path: string, signal: AbortSignal | undefined): Promise<{ size: number; mtimeMs?: number }> {
    let res = await get(encodePath(path), {}, signal, "HEAD");
    let size: number | undefined;
    if (res.statusCode === 405 || res.statusCode === 501) {
      await res.body.dump().catch(() => undefined);
      res = await get(encodePath(path), { range: "bytes=0-0" }, signal);
      if (res.statusCode === 206) size = Number(/\/(\d+)$/.exec(header(res.headers, "content-range") ?? "")?.[1] ?? Number.NaN);
    }
    if (res.statusCode !== 200 && res.statusCode !== 206) return failFor(res, path);
    await res.body.dump().catch(() => undefined);
    size ??= Number(header(res.headers, "content-length") ?? Number.NaN);
    if (!Number.isSafeInteger(size) || size < 0) throw new SourceError(`${label}: ${path}: the server states no size for it`, { retryable: false });
    const modified = Date.parse(header(res.headers, "last-modified") ?? "");
    return Number.isFinite(modified) ? { size, mtimeMs: modified } : { size };
  }
  // An update-mirror server tags the manifest "sha256-<hex of its bytes>" and serves every file of the
  // current and retained generations by hash (docs/manifest.md §9.1): fetching by hash then cannot mix
  // generations when the server publishes mid-run.
  let byHash = false;

  return {
    label,
    capabilities: { rangeReads: true, mtimePrecisionMs: 1000 },

    async probeManifest(validator, probe: ProbeOptions = {}): Promise<ManifestProbe> {
      const conditional: Record<string, string> = {};
      if (validator) {
        const v = JSON.parse(validator) as { etag?: string; lastModified?: string };
        if (v.etag) conditional["if-none-match"] = v.etag;
        else if (v.lastModified) conditional["if-modified-since"] = v.lastModified;
      }
      const res = await get(manifestPath, conditional, probe.signal);
      if (res.statusCode === 304) {
        await res.body.dump();
        return { kind: "unchanged" };
      }
      if (res.statusCode === 404 || res.statusCode === 410) {
        await res.body.dump();
        return { kind: "none" };
      }
      if (res.statusCode !== 200) return failFor(res, manifestPath);
      const announced = Number(header(res.headers, "content-length") ?? "0");
      if (announced > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw new SourceError(`${label}: ${manifestPath}: announced ${announced} bytes, more than the limit of ${MAX_MANIFEST_BYTES}`);
      }
      const bytes = await readCapped(res.body, MAX_MANIFEST_BYTES, `${label}${manifestPath}`).catch((err: unknown) => {
        if (err instanceof UpdateMirrorError) throw err;
        throw new SourceError(`${label}: ${manifestPath}: transfer failed (${(err as Error).message})`, { cause: err });
      });
      const manifest = parseManifest(bytes, `${label}${manifestPath}`);
      const etag = header(res.headers, "etag");
      byHash = etag === `"sha256-${createHash("sha256").update(bytes).digest("hex")}"`;
      const lastModified = header(res.headers, "last-modified");
      const next = etag || lastModified ? JSON.stringify({ ...(etag && { etag }), ...(lastModified && { lastModified }) }) : undefined;
      let signature: string | undefined;
      if (probe.signature) {
        const sigPath = `${METADATA_DIR}/${SIGNATURE_NAME}`;
        const sigRes = await get(sigPath, {}, probe.signal);
        if (sigRes.statusCode === 200) signature = (await readCapped(sigRes.body, 16 * 1024, `${label}${sigPath}`)).toString("utf8");
        else if (sigRes.statusCode === 404 || sigRes.statusCode === 410) await sigRes.body.dump();
        else await failFor(sigRes, sigPath);
      }
      return {
        kind: "manifest",
        upstream: { manifest, bytes, ...(next !== undefined && { validator: next }), ...(signature !== undefined && { signature }) },
      };
    },

    async list(signal?: AbortSignal): Promise<SourceEntry[]> {
      let entries: SourceEntry[] = [];
      let pending: { rel: string; depth: number }[] = [{ rel: "", depth: 0 }];
      while (pending.length > 0) {
        const next: { rel: string; depth: number }[] = [];
        await eachLimit(pending, LISTING_CONCURRENCY, async ({ rel, depth }) => {
          for (const link of await readListingPage(rel, signal)) {
            const path = rel === "" ? link.name : `${rel}/${link.name}`;
            // Our own metadata folder, and any name a mirror cannot carry, are no part of the payload.
            if ((rel === "" && link.name === METADATA_DIR) || unsafePathReason(path) !== undefined) continue;
            if (link.dir) {
              if (depth + 1 > LISTING_LIMITS.maxDepth) throw new SourceError(`${label}: ${path}/: folders nest deeper than ${LISTING_LIMITS.maxDepth} levels; refusing to crawl further`, { retryable: false });
              next.push({ rel: path, depth: depth + 1 });
              continue;
            }
            if (entries.length >= LISTING_LIMITS.maxEntries) throw new SourceError(`${label}: the listing has more than ${LISTING_LIMITS.maxEntries} files; refusing to crawl further`, { retryable: false });
            entries.push({ path, size: link.size ?? -1, ...(link.mtimeMs !== undefined && { mtimeMs: link.mtimeMs }) });
          }
        });
        pending = next;
      }
      // What the pages did not state exactly, a HEAD (or a one-byte range) tells: the engine needs every size.
      const gone = new Set<SourceEntry>();
      await eachLimit(
        entries.filter((e) => e.size < 0 || e.mtimeMs === undefined),
        LISTING_CONCURRENCY,
        async (e) => {
          try {
            const found = await statFile(e.path, signal);
            e.size = found.size;
            if (found.mtimeMs !== undefined) e.mtimeMs = found.mtimeMs;
            else delete e.mtimeMs;
          } catch (err) {
            // Listed but not there (removed since the page was made, or a dead link): not part of the tree.
            if (err instanceof NotFoundError) gone.add(e);
            else throw err;
          }
        },
      );
      if (gone.size > 0) entries = entries.filter((e) => !gone.has(e));
      const conflicts = pathSetConflicts(entries.map((e) => e.path));
      if (conflicts.length > 0) throw new InputRefusedError(`${label}: ${conflicts.length} names in the listing a mirror cannot carry together`, conflicts);
      return entries.sort((a, b) => comparePaths(a.path, b.path));
    },

    async open(path: string, open: OpenOptions = {}): Promise<OpenedFile> {
      const offset = open.offset ?? 0;
      const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-`, ...(open.ifRange !== undefined && { "if-range": open.ifRange }) } : {};
      const deadline = performance.now() + options.totalTimeoutMs;
      let res = byHash && open.sha256 !== undefined ? await get(`${METADATA_DIR}/by-hash/sha256/${open.sha256}`, headers, open.signal) : undefined;
      if (res?.statusCode === 404) {
        // Pruned from the server's retained generations: the path may still hold these bytes (the hash check decides).
        await res.body.dump().catch(() => undefined);
        res = undefined;
      }
      res ??= await get(encodePath(path), headers, open.signal);
      if (res.statusCode !== 200 && res.statusCode !== 206) return failFor(res, path);
      let start = 0;
      if (res.statusCode === 206) {
        const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res.headers, "content-range") ?? "");
        if (!range || Number(range[1]) !== offset) {
          res.body.destroy();
          throw new SourceError(`${label}: ${path}: answered a range other than the one asked for`);
        }
        start = offset;
      }
      const limit = open.expectedSize === undefined ? undefined : open.expectedSize - start;
      const length = header(res.headers, "content-length");
      const size = length === undefined ? undefined : start + Number(length);
      // Only a strong ETag may guard a range (RFC 9110 §13.1.5); Last-Modified is the fallback.
      const etag = header(res.headers, "etag");
      const validator = etag !== undefined && !etag.startsWith("W/") ? etag : header(res.headers, "last-modified");
      return { body: bounded(res.body, limit, deadline, path, label), offset: start, ...(size !== undefined && { size }), ...(validator !== undefined && { validator }) };
    },

    async close(): Promise<void> {},
  };
}
