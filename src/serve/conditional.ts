// Conditional requests (RFC 9110 §13): If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, If-Range.
import type { IncomingHttpHeaders } from "node:http";

/** The validators of one representation. */
export interface Validators {
  /** A strong entity tag, quoted: `"sha256-<hex>"`. */
  etag: string;
  /** Last modification in ms since the epoch; HTTP dates carry whole seconds, so it is compared floored. */
  lastModifiedMs?: number | undefined;
}

/** What the preconditions decide before any body is chosen. */
export type PreconditionOutcome = "proceed" | "not-modified" | "failed";

const ENTITY_TAG = /\s*(W\/)?("[^"]*")\s*(?:,|$)/y;

/** The entity tags of an If-Match / If-None-Match list, with their weakness; undefined for `*`, [] when unreadable. */
function entityTags(header: string): { weak: boolean; tag: string }[] | undefined {
  if (header.trim() === "*") return undefined;
  const tags: { weak: boolean; tag: string }[] = [];
  ENTITY_TAG.lastIndex = 0;
  while (ENTITY_TAG.lastIndex < header.length) {
    const at = ENTITY_TAG.lastIndex;
    const match = ENTITY_TAG.exec(header);
    if (!match || match.index !== at) {
      // A list element that is not an entity tag: skip to the next comma (lenient, as nginx is).
      const comma = header.indexOf(",", at);
      if (comma < 0) break;
      ENTITY_TAG.lastIndex = comma + 1;
      continue;
    }
    tags.push({ weak: match[1] !== undefined, tag: match[2] as string });
  }
  return tags;
}

/** Parses an HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms Date.parse reads). */
export function parseHttpDate(text: string | undefined): number | undefined {
  if (text === undefined || text.length > 64) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

// Formatting a date costs more than the rest of a small response's headers; files share few distinct seconds.
const DATES = new Map<number, string>();

/** Formats an instant as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`. */
export function httpDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  let text = DATES.get(second);
  if (text === undefined) {
    text = new Date(second * 1000).toUTCString();
    if (DATES.size >= 10_000) DATES.clear();
    DATES.set(second, text);
  }
  return text;
}

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

/**
 * Evaluates the preconditions of a GET or HEAD in the order RFC 9110 §13.2.2 gives: If-Match (strong
 * comparison), else If-Unmodified-Since; then If-None-Match (weak comparison), else If-Modified-Since.
 * Returns "failed" for a 412, "not-modified" for a 304, "proceed" otherwise. Unreadable dates are ignored.
 */
export function evaluatePreconditions(headers: IncomingHttpHeaders, validators: Validators): PreconditionOutcome {
  const ifMatch = single(headers["if-match"]);
  if (ifMatch !== undefined) {
    const tags = entityTags(ifMatch);
    if (tags !== undefined && !tags.some((t) => !t.weak && t.tag === validators.etag)) return "failed";
  } else if (validators.lastModifiedMs !== undefined) {
    const since = parseHttpDate(single(headers["if-unmodified-since"]));
    if (since !== undefined && seconds(validators.lastModifiedMs) > seconds(since)) return "failed";
  }
  const ifNoneMatch = single(headers["if-none-match"]);
  if (ifNoneMatch !== undefined) {
    const tags = entityTags(ifNoneMatch);
    if (tags === undefined || tags.some((t) => t.tag === validators.etag)) return "not-modified";
  } else if (validators.lastModifiedMs !== undefined) {
    const since = parseHttpDate(single(headers["if-modified-since"]));
    if (since !== undefined && seconds(validators.lastModifiedMs) <= seconds(since)) return "not-modified";
  }
  return "proceed";
}

/**
 * Whether a Range may be honoured under If-Range (RFC 9110 §13.1.5): without the header, yes; with an
 * entity tag, only when it is strong and equals ours; with a date, only when it equals Last-Modified
 * exactly and that date is a strong validator (at least a second older than `nowMs`).
 */
export function ifRangeAllows(headers: IncomingHttpHeaders, validators: Validators, nowMs: number): boolean {
  const value = single(headers["if-range"])?.trim();
  if (value === undefined) return true;
  if (value.startsWith('"') || value.startsWith("W/")) return value === validators.etag;
  const date = parseHttpDate(value);
  if (date === undefined || validators.lastModifiedMs === undefined) return false;
  return seconds(date) === seconds(validators.lastModifiedMs) && validators.lastModifiedMs <= nowMs - 1000;
}
