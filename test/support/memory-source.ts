// An in-memory Source for unit tests only: the whole Source contract (src/core/source.ts) over a map of path → bytes, nothing on disk or on the wire, never shipped.
import { createHash } from "node:crypto";
import { InputRefusedError, IntegrityError, NotFoundError, SourceError } from "../../src/core/errors.js";
import { parseManifest } from "../../src/core/manifest.js";
import { comparePaths, METADATA_DIR, pathSetConflicts, unsafePathReason } from "../../src/core/safe-path.js";
import type { ManifestProbe, OpenedFile, OpenOptions, ProbeOptions, Source, SourceCapabilities, SourceEntry } from "../../src/core/source.js";
import { MANIFEST_NAME, PRIVATE_DIR, SIGNATURE_NAME } from "../../src/mirror/layout.js";

/** One file's content, with the mtime list() reports for it when given. */
export type MemoryFile = Uint8Array | string | { data: Uint8Array | string; mtimeMs?: number };

/**
 * What a memory source holds, by '/'-separated path relative to its root: the payload and, under
 * `.update-mirror/`, the public metadata (`manifest.json`, `manifest.json.minisig`, `delta.json`, ...).
 * Anything under `.update-mirror/private/` is never served, as no real source serves it.
 */
export type MemoryFiles = ReadonlyMap<string, MemoryFile> | Readonly<Record<string, MemoryFile>>;

export interface MemorySourceOptions {
  /** The source's label (default "memory"). */
  label?: string;
  /** Whether open() honours `offset` (default true); without it every open starts at 0, as the contract allows. */
  rangeReads?: boolean;
  /** What capabilities.mtimePrecisionMs declares (default 1). */
  mtimePrecisionMs?: number;
  /** Size of the chunks a body comes in (default 64 KiB), so aborts and cuts land mid-body. */
  chunkBytes?: number;
}

/** A Source over a map, with the hooks a unit test needs to play an upstream. */
export interface MemorySource extends Source {
  /** Makes the next open() of `path` send half of its body and then fail with a SourceError, as a dropped connection does. */
  cutNext(path: string): void;
  /**
   * Replaces everything the source holds, as a new upstream commit would: the next probe with the old
   * validator returns the new manifest, and validators of changed files go stale. Bodies already
   * opened keep the bytes they started with.
   */
  replace(files: MemoryFiles): void;
}

interface Held {
  data: Buffer;
  mtimeMs?: number;
  /** SHA-256 hex of `data`, computed on first use. */
  sha256?: string;
}

const MANIFEST_PATH = `${METADATA_DIR}/${MANIFEST_NAME}`;
const SIGNATURE_PATH = `${METADATA_DIR}/${SIGNATURE_NAME}`;
const PRIVATE_PREFIX = `${METADATA_DIR}/${PRIVATE_DIR}/`;

/** Private copies, so a test changing its buffers afterwards changes nothing here. */
function load(files: MemoryFiles): Map<string, Held> {
  const held = new Map<string, Held>();
  const pairs = files instanceof Map ? [...files.entries()] : Object.entries(files as Record<string, MemoryFile>);
  for (const [path, file] of pairs) {
    if (path.startsWith(PRIVATE_PREFIX)) continue;
    const { data, mtimeMs } = typeof file === "string" || file instanceof Uint8Array ? { data: file, mtimeMs: undefined } : file;
    held.set(path, { data: Buffer.from(typeof data === "string" ? Buffer.from(data, "utf8") : data), ...(mtimeMs !== undefined && { mtimeMs }) });
  }
  return held;
}

function digest(file: Held): string {
  file.sha256 ??= createHash("sha256").update(file.data).digest("hex");
  return file.sha256;
}

/**
 * Creates a source over `files`. It behaves as the real kinds do where the contract speaks:
 * probeManifest returns the manifest's exact bytes with a validator (`sha256-<hex of the bytes>`),
 * "unchanged" for a matching validator, the signature only when asked for, "none" without a
 * manifest, and ManifestError for a malformed one; list() gives every payload file (never
 * `.update-mirror/`) with its size and mtime, refusing unsafe or conflicting names with
 * InputRefusedError; open() raises NotFoundError before any body, starts at `offset` (past the end is
 * a SourceError, as HTTP's 416), starts over at 0 when `ifRange` is not the file's current validator,
 * and fails a body longer than `expectedSize` with IntegrityError before passing any byte beyond it.
 * An aborted signal fails the call or the body with SourceError. After close(), every call fails.
 */
export function createMemorySource(files: MemoryFiles, options: MemorySourceOptions = {}): MemorySource {
  const label = options.label ?? "memory";
  const capabilities: SourceCapabilities = { rangeReads: options.rangeReads ?? true, mtimePrecisionMs: options.mtimePrecisionMs ?? 1 };
  const chunkBytes = Math.max(1, options.chunkBytes ?? 64 * 1024);
  let held = load(files);
  const cuts = new Set<string>();
  let closed = false;

  /** Refuses a call on a closed source or with an aborted signal. */
  function check(what: string, signal: AbortSignal | undefined): void {
    if (closed) throw new SourceError(`${label}: ${what}: the source is closed`, { retryable: false });
    if (signal?.aborted) throw new SourceError(`${label}: ${what}: aborted`, { cause: signal.reason, retryable: false });
  }

  async function* stream(path: string, data: Buffer, start: number, limit: number | undefined, cut: boolean, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
    const end = cut ? start + Math.floor((data.length - start) / 2) : data.length;
    let sent = 0;
    for (let at = start; at < end; at += chunkBytes) {
      check(path, signal);
      const piece = data.subarray(at, Math.min(at + chunkBytes, end));
      // As the HTTP source does: the chunk that would pass the expected size is refused, not passed on.
      if (limit !== undefined && sent + piece.length > limit) throw new IntegrityError(`${path}: the source sent more bytes than expected (${limit})`);
      sent += piece.length;
      // A copy: the consumer may keep or change what it is given.
      yield Buffer.from(piece);
    }
    if (cut) throw new SourceError(`${label}: ${path}: connection cut after ${sent} of ${data.length - start} bytes (test hook)`);
  }

  return {
    label,
    capabilities,

    cutNext(path: string): void {
      cuts.add(path);
    },

    replace(next: MemoryFiles): void {
      held = load(next);
    },

    async probeManifest(validator: string | undefined, probe: ProbeOptions = {}): Promise<ManifestProbe> {
      check(MANIFEST_PATH, probe.signal);
      const file = held.get(MANIFEST_PATH);
      if (file === undefined) return { kind: "none" };
      const current = `sha256-${digest(file)}`;
      if (validator === current) return { kind: "unchanged" };
      const bytes = Buffer.from(file.data);
      const manifest = parseManifest(bytes, `${label}: ${MANIFEST_PATH}`);
      const signature = probe.signature ? held.get(SIGNATURE_PATH)?.data.toString("utf8") : undefined;
      return { kind: "manifest", upstream: { manifest, bytes, validator: current, ...(signature !== undefined && { signature }) } };
    },

    async list(signal?: AbortSignal): Promise<SourceEntry[]> {
      check("listing", signal);
      const entries: SourceEntry[] = [];
      const unsafe: string[] = [];
      for (const [path, file] of held) {
        if (path === METADATA_DIR || path.startsWith(`${METADATA_DIR}/`)) continue;
        const reason = unsafePathReason(path);
        if (reason !== undefined) unsafe.push(`${JSON.stringify(path)}: ${reason}`);
        else entries.push({ path, size: file.data.length, ...(file.mtimeMs !== undefined && { mtimeMs: file.mtimeMs }) });
      }
      if (unsafe.length > 0) throw new InputRefusedError(`${label}: ${unsafe.length} names a mirror cannot carry`, unsafe.sort());
      const conflicts = pathSetConflicts(entries.map((e) => e.path));
      if (conflicts.length > 0) throw new InputRefusedError(`${label}: ${conflicts.length} names in the listing a mirror cannot carry together`, conflicts);
      return entries.sort((a, b) => comparePaths(a.path, b.path));
    },

    async open(path: string, open: OpenOptions = {}): Promise<OpenedFile> {
      check(path, open.signal);
      const file = held.get(path);
      if (file === undefined) throw new NotFoundError(`${label}: ${path}: not found`);
      const { data } = file;
      const validator = `"${digest(file)}"`;
      const asked = capabilities.rangeReads ? (open.offset ?? 0) : 0;
      // If-Range: a partial made of other bytes than these is not continued; the whole file comes instead.
      const start = asked > 0 && open.ifRange !== undefined && open.ifRange !== validator ? 0 : asked;
      if (start > 0 && start >= data.length) throw new SourceError(`${label}: ${path}: offset ${start} is not inside its ${data.length} bytes`);
      const cut = cuts.delete(path);
      const limit = open.expectedSize === undefined ? undefined : open.expectedSize - start;
      return { body: stream(path, data, start, limit, cut, open.signal), offset: start, size: data.length, validator };
    },

    async readMetadata(name: string): Promise<Buffer | undefined> {
      check(`${METADATA_DIR}/${name}`, undefined);
      const file = held.get(`${METADATA_DIR}/${name}`);
      return file && Buffer.from(file.data);
    },

    async close(): Promise<void> {
      closed = true;
    },
  };
}
