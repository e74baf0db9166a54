// The Source contract: what every upstream kind (folder, HTTP, later FTP and SMB) offers the engine.
import type { Manifest, Tags } from "./manifest.js";

/** One file a source lists. `sha256` is set when the listing itself carries hashes. */
export interface SourceEntry {
  path: string;
  size: number;
  mtimeMs?: number;
  sha256?: string;
  tags?: Tags;
}

/**
 * Limits every source that walks a remote tree (HTTP listings, FTP, SMB) stops at, so a runaway or
 * hostile tree fails the listing instead of the run's memory. More entries than this could not be
 * carried by one manifest anyway (core/manifest.ts MAX_MANIFEST_BYTES).
 */
export const LISTING_LIMITS = { maxDepth: 32, maxEntries: 500_000 } as const;

/** Optional abilities, declared as data so the engine branches on them, never on a kind's name. */
export interface SourceCapabilities {
  /** open() honours `offset` (HTTP Range, FTP REST, positioned reads). */
  rangeReads: boolean;
  /** Coarsest mtime the listing reports, in ms (FAT: 2000, HTTP Last-Modified: 1000). */
  mtimePrecisionMs: number;
}

/** A manifest published at the source root (`.update-mirror/manifest.json`). */
export interface UpstreamManifest {
  manifest: Manifest;
  /** Exact bytes, which `signature` covers. */
  bytes: Buffer;
  signature?: string;
  /** Opaque token for the next run's conditional request (ETag, Last-Modified or a stat digest). */
  validator?: string;
}

export type ManifestProbe =
  | { kind: "manifest"; upstream: UpstreamManifest }
  /** The manifest has not changed since `validator` (one cheap request, nothing downloaded). */
  | { kind: "unchanged" }
  /** The source publishes no manifest; list() it instead. */
  | { kind: "none" };

export interface ProbeOptions {
  signature?: boolean;
  signal?: AbortSignal;
}

export interface OpenOptions {
  /** Byte offset to start at; honoured only when `capabilities.rangeReads`. */
  offset?: number;
  /** Bytes the caller expects in total; a source may use it to cap what it reads. */
  expectedSize?: number;
  /**
   * With `offset`: the validator the partial's bytes came with. A source that can tell the file
   * changed since (HTTP If-Range) starts over at 0 instead of sending a range of other bytes.
   */
  ifRange?: string;
  /** The content the caller expects, when known: a source that also holds content by hash may serve it from there. */
  sha256?: string;
  signal?: AbortSignal;
}

export interface OpenedFile {
  /** The file's bytes from `offset`. Errors (never ends quietly) when the transfer is cut short. */
  body: AsyncIterable<Uint8Array>;
  /** Where `body` starts: the requested offset, or 0 when the source had to start over. */
  offset: number;
  /** Total size as the source announced it, when it did. */
  size?: number;
  /** What identifies this version of the file at the source (a strong ETag or Last-Modified), for a later If-Range. */
  validator?: string;
}

/**
 * An upstream the engine copies from. Implementations translate their library's errors at the edge:
 * a missing file is NotFoundError; an unreachable, slow or failing server is SourceError (retryable,
 * with `retryAfterMs` when the server asked for a pause); a malformed manifest is ManifestError.
 * Messages name the source by `label`, which never contains credentials.
 */
export interface Source {
  readonly label: string;
  readonly capabilities: SourceCapabilities;
  /**
   * Reads the source's manifest, conditionally when `validator` (from a previous probe) is given,
   * and its signature too when `options.signature` (an extra request, made only when trust is set).
   * Returns "none" when the source publishes no manifest. Throws SourceError or ManifestError.
   */
  probeManifest(validator: string | undefined, options?: ProbeOptions): Promise<ManifestProbe>;
  /** Lists every file under the source root (unsafe names are refused, not skipped). Throws SourceError, InputRefusedError. */
  list(signal?: AbortSignal): Promise<SourceEntry[]>;
  /** Opens one file by its safe relative path. Throws NotFoundError or SourceError. */
  open(path: string, options?: OpenOptions): Promise<OpenedFile>;
  /**
   * Reads a small public metadata file beside the manifest (`.update-mirror/<name>`, e.g. a delta
   * bundle's delta.json), whole; undefined when there is none. Optional: kinds without it have none.
   * Throws SourceError.
   */
  readMetadata?(name: string): Promise<Buffer | undefined>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}
