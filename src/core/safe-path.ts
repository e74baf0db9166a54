// Safe relative paths: the one place that decides whether a name from a manifest, listing or tree may be used.
import { UnsafePathError } from "./errors.js";

/** The mirror's metadata folder at the root; payload paths may never start with it. */
export const METADATA_DIR = ".update-mirror";

/** Longest accepted path, in UTF-8 bytes (Windows long-path and most URL limits stay well above this). */
export const MAX_PATH_BYTES = 1024;
/** Longest accepted segment, in UTF-8 bytes (ext4, NTFS, SMB name limit). */
export const MAX_SEGMENT_BYTES = 255;

// Device names Windows reserves in every folder, with or without an extension (CON.txt is the console too).
const RESERVED_DEVICE = /^(con|prn|aux|nul|conin\$|conout\$|clock\$|com[0-9¹²³]|lpt[0-9¹²³])$/i;
// Characters Windows cannot store in a name; ':' also covers drive letters and NTFS streams.
const WINDOWS_FORBIDDEN = /[<>:"|?*]/;
// C0 controls, DEL and C1 controls: never meaningful in a file name and unsafe in logs and sha256sum lines.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * Returns the rule a relative path breaks, or undefined when it is safe.
 * Safe means: non-empty, relative, POSIX separators, NFC, no empty/"."/".." segments, no control or
 * Windows-forbidden characters, no reserved device names, no trailing dot or space, within length
 * limits, and not inside the root metadata folder.
 */
export function unsafePathReason(path: string): string | undefined {
  if (typeof path !== "string" || path.length === 0) return "empty path";
  if (path.includes("\0")) return "contains a NUL character";
  if (CONTROL.test(path)) return "contains a control character";
  if (path.includes("\\")) return "contains a backslash (paths use '/')";
  if (path.startsWith("/")) return "is absolute";
  if (/^[A-Za-z]:/.test(path)) return "starts with a drive letter";
  // Printable ASCII is always NFC and one byte per character: the common case skips both costly checks.
  const ascii = PRINTABLE_ASCII.test(path);
  const bytes = (text: string) => (ascii ? text.length : Buffer.byteLength(text, "utf8"));
  if (!ascii && path !== path.normalize("NFC")) return "is not in Unicode NFC form";
  if (bytes(path) > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  const segments = path.split("/");
  for (const segment of segments) {
    if (segment === "") return "has an empty segment ('//' or a leading or trailing '/')";
    if (segment === "." || segment === "..") return `has a '${segment}' segment`;
    if (WINDOWS_FORBIDDEN.test(segment)) return `segment ${JSON.stringify(segment)} has a character Windows cannot store (<>:"|?*)`;
    const last = segment[segment.length - 1];
    if (last === "." || last === " ") return `segment ${JSON.stringify(segment)} ends with a dot or space`;
    const dot = segment.indexOf(".");
    if (RESERVED_DEVICE.test((dot < 0 ? segment : segment.slice(0, dot)).trimEnd())) return `segment ${JSON.stringify(segment)} is a reserved Windows device name`;
    if (bytes(segment) > MAX_SEGMENT_BYTES) return `segment is longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  if (segments[0] === METADATA_DIR) return `is inside the reserved ${METADATA_DIR}/ folder`;
  return undefined;
}

/** Throws UnsafePathError when `path` breaks a rule of unsafePathReason; returns it otherwise. */
export function assertSafePath(path: string): string {
  const reason = unsafePathReason(path);
  if (reason !== undefined) throw new UnsafePathError(path, reason);
  return path;
}

/**
 * Decodes a percent-encoded URL path (relative to a base) segment by segment, then checks it.
 * An encoded '/' or '\' inside a segment is refused, since decoding it would change the segmentation.
 * Throws UnsafePathError for malformed escapes and for every rule of unsafePathReason.
 */
export function safePathFromUrl(encoded: string): string {
  const segments = encoded.split("/").map((segment) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new UnsafePathError(encoded, "has a malformed percent escape");
    }
    if (decoded.includes("/") || decoded.includes("\\")) {
      throw new UnsafePathError(encoded, "has an encoded '/' or '\\' inside a segment");
    }
    return decoded;
  });
  return assertSafePath(segments.join("/"));
}

/**
 * Order of paths in manifests and SHA256SUMS: by UTF-8 bytes, which equals Unicode code point order.
 * Compared on UTF-16 units without encoding: units only misorder when a surrogate (U+D800-DFFF)
 * meets U+E000-FFFF, so surrogates are lifted above that range before comparing.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/** The key under which two paths collide on a case-insensitive file system (Windows, macOS, SMB). */
export function caseFoldKey(path: string): string {
  return (PRINTABLE_ASCII.test(path) ? path : path.normalize("NFC")).toLowerCase();
}

/**
 * Checks a set of already-safe paths for conflicts that only show once they are all written to one
 * tree: two paths equal but for case, a path listed twice, or a file that is also a folder of another
 * path. Returns one message per conflict (empty when none).
 */
export function pathSetConflicts(paths: Iterable<string>): string[] {
  const problems: string[] = [];
  const byFold = new Map<string, string>();
  for (const path of paths) {
    const key = caseFoldKey(path);
    const seen = byFold.get(key);
    if (seen === path) problems.push(`${JSON.stringify(path)}: listed twice`);
    else if (seen !== undefined) problems.push(`${JSON.stringify(path)}: differs only in case from ${JSON.stringify(seen)}`);
    else byFold.set(key, path);
  }
  for (const [folded, path] of byFold) {
    for (let slash = folded.indexOf("/"); slash >= 0; slash = folded.indexOf("/", slash + 1)) {
      if (byFold.has(folded.slice(0, slash))) {
        problems.push(`${JSON.stringify(path)}: its folder ${JSON.stringify(path.slice(0, slash))} is also listed as a file`);
        break;
      }
    }
  }
  return problems;
}
