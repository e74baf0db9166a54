// Manifest format v1: the model, its canonical bytes, and the strict reader every consumer goes through.
import { canonicalJson } from "./canonical-json.js";
import { ManifestError } from "./errors.js";
import { comparePaths, pathSetConflicts, unsafePathReason } from "./safe-path.js";
import { Utf8Builder } from "./utf8-builder.js";

export const MANIFEST_FORMAT = "update-mirror-manifest-v1";
/** Largest manifest a reader accepts (about half a million entries); bigger input is refused unread. */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

export const TAG_KEYS = ["product", "component", "platform", "language", "version"] as const;
export type TagKey = (typeof TAG_KEYS)[number];
export type Tags = Partial<Record<TagKey, string>>;
const MAX_TAG_LENGTH = 128;

export interface ManifestFile {
  /** Relative, '/'-separated, NFC, and safe by core/safe-path rules. */
  path: string;
  size: number;
  /** Lowercase hex SHA-256 of the file's bytes. */
  sha256: string;
  tags?: Tags;
}

/** Where a manifest's files came from. */
export interface ManifestOrigin {
  /** The program and version that wrote the manifest, e.g. "update-mirror/0.1.0". */
  generator: string;
  /** The upstream the files were copied from (URL without credentials, or a folder); absent for `index`. */
  upstream?: string;
  /** The upstream manifest's version, when the upstream had one. */
  upstreamVersion?: number;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  /** Grows by at least one with every commit of this mirror; starts at 1. */
  version: number;
  /** UTC, `YYYY-MM-DDTHH:MM:SSZ`. */
  created: string;
  expires?: string;
  origin: ManifestOrigin;
  /** Sorted by path (UTF-8 byte order), no duplicates. */
  files: ManifestFile[];
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Formats a date as a manifest timestamp (UTC, whole seconds). */
export function formatTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** True when `value` is a manifest timestamp naming a real instant. */
export function isTimestamp(value: unknown): value is string {
  if (typeof value !== "string" || !TIMESTAMP.test(value)) return false;
  const ms = Date.parse(value);
  return Number.isFinite(ms) && formatTimestamp(new Date(ms)) === value;
}

/** Returns the files sorted in manifest order (a new array). */
export function sortFiles(files: readonly ManifestFile[]): ManifestFile[] {
  return [...files].sort((a, b) => comparePaths(a.path, b.path));
}

/**
 * The manifest's canonical bytes: canonical JSON followed by one newline. File entries, the bulk of a
 * manifest, are written with their keys already in canonical order ("path" < "sha256" < "size" <
 * "tags"); everything else goes through canonicalJson. A unit test checks both paths agree.
 */
export function serializeManifest(manifest: Manifest): Buffer {
  const [before, after] = canonicalFrame(manifest);
  const out = new Utf8Builder(before.length + after.length + manifest.files.length * 160);
  out.put(before);
  for (let i = 0; i < manifest.files.length; i += 1) {
    if (i > 0) out.put(",");
    out.put(fileEntryJson(manifest.files[i] as ManifestFile));
  }
  out.put(after);
  return out.bytes();
}

/** One file entry's canonical JSON, keys already in canonical order. */
function fileEntryJson(f: ManifestFile): string {
  if (!Number.isSafeInteger(f.size)) throw new TypeError(`canonical JSON holds only safe integers, got ${f.size}`);
  const tags = f.tags === undefined ? "" : `,"tags":${canonicalJson({ ...f.tags })}`;
  return `{"path":${JSON.stringify(f.path)},"sha256":${JSON.stringify(f.sha256)},"size":${f.size}${tags}}`;
}

/** The canonical text before the first file entry and after the last one (final newline included). */
function canonicalFrame(manifest: Manifest): [string, string] {
  const head = canonicalJson({ ...manifest, origin: { ...manifest.origin }, files: [] });
  // Every quote inside a string value is escaped, so the key is the only place `"files":[]` can occur.
  const at = head.indexOf('"files":[]') + '"files":['.length;
  return [head.slice(0, at), `${head.slice(at)}\n`];
}

/**
 * True when `text` is exactly the canonical form of `manifest`, compared entry by entry in place, so
 * checking a manifest of 40,000 files never builds a second copy of it.
 */
function isCanonicalText(manifest: Manifest, text: string): boolean {
  const [before, after] = canonicalFrame(manifest);
  if (!text.startsWith(before)) return false;
  let at = before.length;
  for (let i = 0; i < manifest.files.length; i += 1) {
    if (i > 0) {
      if (text.charCodeAt(at) !== 0x2c) return false;
      at += 1;
    }
    const entry = fileEntryJson(manifest.files[i] as ManifestFile);
    if (!text.startsWith(entry, at)) return false;
    at += entry.length;
  }
  return text.length === at + after.length && text.endsWith(after);
}

/** Sum of the sizes of every listed file. */
export function totalBytes(manifest: Pick<Manifest, "files">): number {
  return manifest.files.reduce((sum, f) => sum + f.size, 0);
}

type Json = unknown;
function isObject(value: Json): value is Record<string, Json> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkKeys(obj: Record<string, Json>, allowed: readonly string[], where: string, fail: (msg: string) => never): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) fail(`${where}: unknown field ${JSON.stringify(key)}`);
  }
}

function isCount(value: Json, min: number): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min;
}

function checkTags(value: Json, where: () => string, fail: (msg: string) => never): void {
  if (!isObject(value)) {
    fail(`${where()}.tags: must be an object`);
    return;
  }
  for (const key in value) {
    if (!(TAG_KEYS as readonly string[]).includes(key)) fail(`${where()}.tags: unknown field ${JSON.stringify(key)}`);
    const tag = value[key];
    if (typeof tag !== "string" || tag.length === 0 || tag.length > MAX_TAG_LENGTH || CONTROL.test(tag)) {
      fail(`${where()}.tags.${key}: must be a non-empty string of at most ${MAX_TAG_LENGTH} characters without control characters`);
    }
  }
}

// Entries are checked in place and kept as JSON.parse made them: no copy and no message text per entry
// for tens of thousands of files; the message naming the entry is built only on failure.
function readFileEntry(value: Json, index: number, fail: (msg: string) => never): ManifestFile {
  const where = () => `files[${index}]${isObject(value) && typeof value.path === "string" ? ` (${JSON.stringify(value.path)})` : ""}`;
  if (!isObject(value)) return fail(`${where()}: must be an object`);
  for (const key in value) {
    if (key !== "path" && key !== "size" && key !== "sha256" && key !== "tags") fail(`${where()}: unknown field ${JSON.stringify(key)}`);
  }
  if (typeof value.path !== "string") return fail(`${where()}.path: must be a string`);
  const unsafe = unsafePathReason(value.path);
  if (unsafe !== undefined) fail(`${where()}.path: ${unsafe}`);
  if (!isCount(value.size, 0)) fail(`${where()}.size: must be a non-negative integer, got ${JSON.stringify(value.size)}`);
  if (typeof value.sha256 !== "string" || !SHA256_HEX.test(value.sha256)) {
    fail(`${where()}.sha256: must be 64 lowercase hex digits, got ${JSON.stringify(value.sha256)}`);
  }
  if (value.tags !== undefined) checkTags(value.tags, where, fail);
  return value as unknown as ManifestFile;
}

function readOrigin(value: Json, fail: (msg: string) => never): ManifestOrigin {
  if (!isObject(value)) fail("origin: must be an object");
  checkKeys(value, ["generator", "upstream", "upstreamVersion"], "origin", fail);
  if (typeof value.generator !== "string" || value.generator.length === 0) fail("origin.generator: must be a non-empty string");
  const origin: ManifestOrigin = { generator: value.generator };
  if (value.upstream !== undefined) {
    if (typeof value.upstream !== "string" || value.upstream.length === 0) fail("origin.upstream: must be a non-empty string");
    origin.upstream = value.upstream;
  }
  if (value.upstreamVersion !== undefined) {
    if (!isCount(value.upstreamVersion, 1)) fail("origin.upstreamVersion: must be a positive integer");
    origin.upstreamVersion = value.upstreamVersion;
  }
  return origin;
}

/**
 * Reads manifest bytes strictly. Throws ManifestError naming `source` and the entry at fault when the
 * input is too large, not UTF-8 JSON, of an unknown format, has unknown or malformed fields, an unsafe
 * path, duplicate or case-colliding paths, files out of order, or is not in canonical form.
 */
export function parseManifest(bytes: Uint8Array, source: string, maxBytes = MAX_MANIFEST_BYTES): Manifest {
  const fail: (msg: string) => never = (msg) => {
    throw new ManifestError(`${source}: ${msg}`);
  };
  if (bytes.byteLength > maxBytes) fail(`manifest is ${bytes.byteLength} bytes, more than the limit of ${maxBytes}`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return fail("not valid UTF-8");
  }
  let doc: Json;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return fail(`not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(doc)) return fail("not a JSON object");
  if (doc.format !== MANIFEST_FORMAT) {
    fail(`unknown format ${JSON.stringify(doc.format)} (this version reads ${JSON.stringify(MANIFEST_FORMAT)})`);
  }
  checkKeys(doc, ["format", "version", "created", "expires", "origin", "files"], "manifest", fail);
  if (!isCount(doc.version, 1)) fail(`version: must be a positive integer, got ${JSON.stringify(doc.version)}`);
  if (!isTimestamp(doc.created)) fail(`created: must be a UTC timestamp like 2026-01-31T12:00:00Z, got ${JSON.stringify(doc.created)}`);
  if (doc.expires !== undefined && !isTimestamp(doc.expires)) {
    fail(`expires: must be a UTC timestamp like 2026-01-31T12:00:00Z, got ${JSON.stringify(doc.expires)}`);
  }
  const origin = readOrigin(doc.origin, fail);
  if (!Array.isArray(doc.files)) return fail("files: must be an array");
  const files = doc.files.map((entry, i) => readFileEntry(entry, i, fail));
  for (let i = 1; i < files.length; i += 1) {
    const prev = files[i - 1] as ManifestFile;
    const cur = files[i] as ManifestFile;
    const order = comparePaths(prev.path, cur.path);
    if (order === 0) fail(`files[${i}] (${JSON.stringify(cur.path)}): duplicate path`);
    if (order > 0) fail(`files[${i}] (${JSON.stringify(cur.path)}): out of order (files must be sorted by path)`);
  }
  const conflicts = pathSetConflicts(files.map((f) => f.path));
  if (conflicts.length > 0) fail(`files: ${conflicts[0]}`);
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: doc.version as number,
    created: doc.created as string,
    origin,
    files,
  };
  if (doc.expires !== undefined) manifest.expires = doc.expires as string;
  // Decoding valid UTF-8 is one-to-one (and a BOM is kept as a character), so comparing text is comparing bytes.
  if (!isCanonicalText(manifest, text)) {
    fail("not in canonical form (sorted keys, no whitespace, one final newline; see docs/manifest.md)");
  }
  return manifest;
}
