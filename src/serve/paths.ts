// Request targets to mirror paths: decoded exactly once, every traversal encoding refused before any lookup.
import { METADATA_DIR, unsafePathReason } from "../core/safe-path.js";

/** A request target the server may look up. */
export interface RequestPath {
  /** Decoded path relative to the root, without leading or trailing '/': "" for the root itself. */
  path: string;
  /** The target's path ended in '/' (a folder URL). */
  slash: boolean;
  /** The raw query after '?', "" when there is none. */
  query: string;
}

export type ParsedTarget = { ok: true; value: RequestPath } | { ok: false; reason: string };

const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;
// Refused raw: '\' (a separator on Windows), '#' (a fragment is never sent), and, though Node's parser
// already refuses them, controls, spaces and non-ASCII. Other characters RFC 3986 wants encoded ('"',
// '[', '{', '|' ...) are accepted raw, as nginx does, since they are ordinary in names.
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const RAW_REFUSED = /[\\#\u0000-\u0020\u007f-\uffff]/;
const PERCENT = /%(?![0-9A-Fa-f]{2})/;

function fail(reason: string): ParsedTarget {
  return { ok: false, reason };
}

/**
 * Parses the request target of an HTTP/1.1 request (origin-form `/a/b?q`, or absolute-form
 * `http://host/a/b`). The path is split at '/' first and each segment percent-decoded exactly once
 * (so `%252e` stays the literal name `%2e`), as UTF-8 with overlong and other invalid sequences refused.
 * Refused, with a reason for a 400: a raw `\`, `#`, control, space or non-ASCII character; malformed
 * escapes; a segment decoding to contain `/`, `\` or NUL; `.` and `..` segments; empty segments; and
 * any name core/safe-path.ts refuses (the reserved `.update-mirror/` prefix excepted: it holds the
 * server's own routes).
 */
export function parseRequestTarget(raw: string): ParsedTarget {
  let target = raw;
  const absolute = ABSOLUTE_FORM.exec(target);
  if (absolute) target = target.slice(absolute[0].length) || "/";
  if (!target.startsWith("/")) return fail("the request target is not a path");
  if (RAW_REFUSED.test(target)) return fail("the request target has characters that must be percent-encoded ('\\', '#', controls, spaces, non-ASCII)");
  if (PERCENT.test(target)) return fail("malformed percent escape");
  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q + 1);
  if (rawPath === "/") return { ok: true, value: { path: "", slash: true, query } };
  const slash = rawPath.endsWith("/");
  const rawSegments = rawPath.slice(1, slash ? -1 : undefined).split("/");
  const segments: string[] = [];
  for (const rawSegment of rawSegments) {
    if (rawSegment === "") return fail("empty path segment ('//')");
    let segment = rawSegment;
    if (rawSegment.includes("%")) {
      try {
        // Throws on malformed escapes and on invalid UTF-8, overlong forms (%c0%ae) and surrogates included.
        segment = decodeURIComponent(rawSegment);
      } catch {
        return fail("percent escapes that are not valid UTF-8");
      }
      if (segment.includes("/") || segment.includes("\\")) return fail("an encoded '/' or '\\' inside a path segment");
      if (segment.includes("\0")) return fail("an encoded NUL");
    }
    if (segment === "." || segment === "..") return fail(`a '${segment}' segment`);
    segments.push(segment);
  }
  const path = segments.join("/");
  // The reserved folder holds the server's routes; what follows it must still be a safe name.
  const checked = segments[0] === METADATA_DIR ? segments.slice(1).join("/") : path;
  if (checked !== "") {
    const reason = unsafePathReason(checked);
    if (reason !== undefined) return fail(`the path ${reason}`);
  }
  return { ok: true, value: { path, slash, query } };
}

/** Percent-encodes a mirror path for use in a URL or a Location header (each segment, '/' kept). */
export function encodePath(path: string): string {
  return path === "" ? "" : path.split("/").map(encodeURIComponent).join("/");
}
