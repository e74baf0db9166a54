// The Store contract: where a mirror lives, and how files are staged, verified and published into it.
import type { Manifest } from "./manifest.js";

/** Signs manifest bytes; returns the detached signature text. */
export type ManifestSigner = (manifestBytes: Buffer) => string;

/** What a store remembers between runs, in its private folder. */
export interface MirrorState {
  /** Highest manifest version this mirror ever committed; versions only grow, even across rollbacks. */
  highestVersion: number;
  /**
   * Per source label: the manifest validator and version of the last publish from it (valid only for
   * the same selection `fingerprint`), and a cool-down a 429/503 asked for.
   */
  sources: Record<string, { validator?: string; version?: number; fingerprint?: string; coolDownUntil?: string }>;
  /** Per trusted key id: the highest upstream manifest version accepted (rollback protection). */
  trusted: Record<string, number>;
  /** After a rollback: upstream manifests at or below this version are not taken again. */
  heldUpstreamVersion?: number;
  /** For sources without a manifest: what each path looked like when we last hashed it. */
  listed: Record<string, { size: number; mtimeMs?: number; sha256: string }>;
  /**
   * The upstream manifests applied lately, newest first (a few, so a rollback still finds its own):
   * `status` tells the data's age from the `created` of the one the committed manifest came from.
   */
  upstreams?: UpstreamRecord[];
  /** The last run, whatever its outcome (a dry run is not recorded). */
  lastRun?: RunRecord;
  /** When a run last ended "updated" or "unchanged" (ISO 8601). */
  lastSuccess?: string;
}

export interface UpstreamRecord {
  source: string;
  version: number;
  created: string;
  expires?: string;
}

/** One run as `status` and `history` report it. Messages name files and sources, never a secret. */
export interface RunRecord {
  started: string;
  finished: string;
  result: "updated" | "partial" | "unchanged" | "failed";
  version?: number;
  error?: { code: string; message: string };
  /** The verb (sync, pull, import, export) and, for `run JOB`, the job's name. */
  command?: string;
  job?: string;
  /** The source used and the upstream version it offered. */
  source?: string;
  upstreamVersion?: number;
  added?: number;
  updated?: number;
  removed?: number;
  failed?: number;
  /** Bytes transferred from sources. */
  bytes?: number;
}

export interface Committed {
  manifest: Manifest;
  bytes: Buffer;
  /** A signature is published beside the manifest. */
  signed: boolean;
  /**
   * Paths the store found changed since they were committed (something wrote into the folder); they
   * are left out of `manifest`, so a run fetches them again rather than trusting an "unchanged" upstream.
   */
  drifted?: string[];
}

export interface ReceiveExpectation {
  size: number;
  /** When known (manifest upstreams), a mismatch is refused and the partial deleted. */
  sha256?: string;
  /** Continue the partial download of this key instead of starting over. */
  append: boolean;
  /** The source's validator for these bytes, kept with the partial for a later If-Range. */
  validator?: string;
}

/**
 * A mirror's storage. Payload files appear under their final names only through publish(); the
 * manifest is written last. Implementations throw IoError/NotFoundError for storage failures.
 */
export interface Store {
  readonly label: string;
  /** Takes the one-writer lock. Throws LockedError naming the holder (host, PID, start time). */
  lock(command: string): Promise<() => Promise<void>>;
  /** Completes a publish that a crash interrupted; returns its version, or undefined when none was pending. */
  recover(): Promise<number | undefined>;
  readCommitted(): Promise<Committed | undefined>;
  readState(): Promise<MirrorState>;
  writeState(state: MirrorState): Promise<void>;
  /**
   * True when verified content with this hash is staged or retained for a previous generation. Content
   * of the committed manifest is not asked for: the engine knows it from readCommitted, and publish()
   * takes it from wherever it is committed.
   */
  hasObject(sha256: string, size: number): Promise<boolean>;
  /** What an interrupted download left under `key`: its size (0 when none) and its source validator. */
  partial(key: string): Promise<{ size: number; validator?: string }>;
  /**
   * Streams `body` into staging under `key`, hashing as it goes. When complete and (if given) the
   * hash matches, the content becomes an object usable by publish(). Throws IntegrityError when
   * the body is longer than `size` or the hash differs (the partial is deleted), or when it ends
   * short (the partial is kept for a resume); rethrows the body's own error, keeping the partial.
   */
  receive(key: string, body: AsyncIterable<Uint8Array>, expect: ReceiveExpectation): Promise<{ sha256: string; size: number }>;
  /** Free bytes where staged files go. */
  freeBytes(): Promise<number>;
  /**
   * Makes `next` the committed state: every listed file must be an object or a committed file.
   * Replaced and removed files are retained for `keepGenerations` previous manifests.
   */
  publish(next: Manifest, options: { sign?: ManifestSigner; keepGenerations: number }): Promise<void>;
  /** Versions of the retained previous manifests, newest first. */
  generations(): Promise<number[]>;
  /** A retained previous manifest. Throws NotFoundError when it is not retained. */
  readGeneration(version: number): Promise<Manifest>;
  /** Appends one run to the store's history, which stays bounded (the oldest records go first). Throws IoError. */
  appendHistory(record: RunRecord): Promise<void>;
  /** The runs recorded, oldest first. Throws IoError. */
  readHistory(): Promise<RunRecord[]>;
  /** Drops what the store holds open (a share's connection); idempotent. Absent where nothing is held. */
  close?(): Promise<void>;
}
