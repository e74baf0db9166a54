// The served state: one committed manifest, its public metadata bytes, the identity of every listed file and the hashes by-hash may serve, loaded whole before use.
import { createHash } from "node:crypto";
import type { BigIntStats } from "node:fs";
import { constants } from "node:fs";
import { lstatSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fsError, IoError, NotFoundError, UpdateMirrorError } from "../core/errors.js";
import { MAX_MANIFEST_BYTES, parseManifest } from "../core/manifest.js";
import { renderSha256Sums } from "../core/sha256sums.js";
import { MANIFEST_NAME, mirrorLayout, SIGNATURE_NAME, SUMS_NAME } from "../mirror/layout.js";
import { retainedLayout, retainedVersions } from "../mirror/retained.js";

/** Opens without following a symlink in the last component, and without blocking on a FIFO (flags Windows lacks are 0 there). */
export const OPEN_NOFOLLOW = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/** Which inode, and which version of it, a path led to: equal identities mean the same bytes (barring in-place writes that restore mtime). */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
}

export function identityOf(st: BigIntStats): FileIdentity {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs };
}

export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeNs === b.mtimeNs;
}

/** One listed file as the server knows it. */
export interface SnapshotFile {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  /** The file's mtime when the snapshot was loaded (the manifest's `created` when it was missing), for Last-Modified and listings. */
  readonly mtimeMs: number;
  /**
   * The identity the file at `path` had when it was known to hold the listed bytes: recorded at load
   * for files unchanged since the commit, or after a hash check. A file at the path with another
   * identity is never served as this entry without a new check.
   */
  trusted: FileIdentity | undefined;
  /** The path is a symlink, a non-regular file, or lies below a folder that is a symlink: never opened. */
  readonly blocked: boolean;
}

/** A public metadata file, held in memory so that a manifest and its signature always belong together. */
export interface PublicDocument {
  readonly bytes: Buffer;
  readonly sha256: string;
  readonly contentType: string;
  readonly lastModifiedMs: number;
}

/** Content the by-hash route may serve: from a current file with these bytes, or else a retained object. */
export interface HashEntry {
  readonly size: number;
  readonly file?: SnapshotFile;
}

/** How manifest.json looked on disk: any change in these means a new commit (it is replaced by rename). */
export interface ManifestStamp {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export function sameStamp(a: ManifestStamp | undefined, b: ManifestStamp | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

function stampOf(st: BigIntStats): ManifestStamp {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}

/**
 * An immutable view of one committed generation. Nothing outside it is ever served: requests are
 * answered from these maps, and file bytes only when they match a listed identity or hash.
 */
export interface Snapshot {
  /** The mirror root, with symlinks resolved. */
  readonly root: string;
  readonly version: number;
  readonly createdMs: number;
  readonly expiresMs: number | undefined;
  readonly files: ReadonlyMap<string, SnapshotFile>;
  /** Every folder holding a listed file, the root ("") included. */
  readonly dirs: ReadonlySet<string>;
  /** Hashes of the current and the retained generations. */
  readonly byHash: ReadonlyMap<string, HashEntry>;
  /** `manifest.json`, `manifest.json.minisig` (when signed) and `SHA256SUMS`, by name. */
  readonly documents: ReadonlyMap<string, PublicDocument>;
  readonly totalBytes: number;
  readonly stamp: ManifestStamp;
  /** Retained previous versions whose hashes by-hash serves, newest first. */
  readonly retained: readonly number[];
  /** Files whose bytes must be checked before they are served from their path (changed since the commit, missing, blocked). */
  readonly unverifiedFiles: number;
  /** Things an operator should know (an unreadable retained manifest, a signature newer than the manifest). */
  readonly warnings: readonly string[];
}

/** Parsed retained manifests, by version, reused across loads while their files are unchanged. */
export type RetainedCache = Map<number, { stamp: ManifestStamp; hashes: Map<string, number> }>;

export interface LoadOptions {
  /** Shared between loads so unchanged retained manifests are parsed once. */
  retainedCache?: RetainedCache;
}

const MAX_SIGNATURE_BYTES = 16 * 1024;
const RETRY_MS = 50;
// A signature newer than the manifest for longer than this is an interrupted commit, not one under way.
const SIGNATURE_WAITS = 40;
// A manifest that changes under every one of this many loads is being churned, not committed.
const MAX_ATTEMPTS = 100;

/** Stats manifest.json; undefined when there is none. Throws IoError. */
export async function statManifest(root: string): Promise<ManifestStamp | undefined> {
  const file = mirrorLayout(root).manifest;
  try {
    return stampOf(await stat(file, { bigint: true }));
  } catch (err) {
    const mapped = fsError(err, file);
    if (mapped instanceof NotFoundError) return undefined;
    throw mapped;
  }
}

/** Reads a small file without following a final symlink; undefined when missing. Checks the size before reading. */
async function readSmall(file: string, limit: number): Promise<{ bytes: Buffer; st: BigIntStats } | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, OPEN_NOFOLLOW);
  } catch (err) {
    const mapped = fsError(err, file);
    if (mapped instanceof NotFoundError) return undefined;
    throw mapped;
  }
  try {
    const st = await handle.stat({ bigint: true });
    if (!st.isFile()) throw new IoError(`${file}: not a regular file`);
    if (st.size > BigInt(limit)) throw new IoError(`${file}: ${st.size} bytes, more than the limit of ${limit}`);
    return { bytes: await handle.readFile(), st };
  } catch (err) {
    throw fsError(err, file);
  } finally {
    await handle.close();
  }
}

function document(bytes: Buffer, contentType: string, lastModifiedMs: number): PublicDocument {
  return { bytes, sha256: createHash("sha256").update(bytes).digest("hex"), contentType, lastModifiedMs };
}

// Longest stretch of synchronous stat calls before the event loop gets a turn (see inSlices).
const SLICE_MS = 5;

/**
 * Runs `each` over `items` synchronously in slices of about SLICE_MS, yielding to the event loop
 * between them. Synchronous lstat skips the promise API's round trip through the thread pool (a whole
 * load of 40,000 files took 0.5 s instead of 1.4 s), and slicing keeps a reload from stalling the
 * requests the old snapshot is still answering.
 */
async function inSlices<T>(items: readonly T[], each: (item: T) => void): Promise<void> {
  let at = 0;
  while (at < items.length) {
    const until = performance.now() + SLICE_MS;
    while (at < items.length && performance.now() < until) {
      for (const end = Math.min(items.length, at + 64); at < end; at += 1) each(items[at] as T);
    }
    if (at < items.length) await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The folders of `path`, nearest first ("a/b/c" -> "a/b", "a"). */
function* parents(path: string): Generator<string> {
  for (let slash = path.lastIndexOf("/"); slash > 0; slash = path.lastIndexOf("/", slash - 1)) yield path.slice(0, slash);
}

async function loadRetained(root: string, current: number, cache: RetainedCache, warnings: string[]): Promise<{ versions: number[]; hashes: Map<string, number>[] }> {
  const layout = retainedLayout(root);
  const versions = (await retainedVersions(root)).filter((v) => v !== current);
  const kept: number[] = [];
  const hashes: Map<string, number>[] = [];
  for (const version of versions) {
    const file = layout.manifest(version);
    try {
      const st = await stat(file, { bigint: true });
      const stamp = stampOf(st);
      let cached = cache.get(version);
      if (!cached || !sameStamp(cached.stamp, stamp)) {
        const read = await readSmall(file, MAX_MANIFEST_BYTES);
        if (read === undefined) continue;
        const manifest = parseManifest(read.bytes, file);
        cached = { stamp, hashes: new Map(manifest.files.map((f) => [f.sha256, f.size])) };
        cache.set(version, cached);
      }
      kept.push(version);
      hashes.push(cached.hashes);
    } catch (err) {
      // Pruned between the listing and the read: simply no longer retained.
      if ((err as NodeJS.ErrnoException).code === "ENOENT" || err instanceof NotFoundError) continue;
      if (!(err instanceof UpdateMirrorError)) throw err;
      warnings.push(`retained generation ${version} is not served by hash: ${err.message}`);
    }
  }
  for (const version of cache.keys()) if (!versions.includes(version)) cache.delete(version);
  return { versions: kept, hashes };
}

/**
 * Loads the committed state of the mirror at `root` (a real path). Reads the manifest and signature
 * as one consistent pair: a signature newer than the manifest means a commit is under way, and a
 * manifest that changed while the snapshot was being built means one has finished; either way the
 * load starts over. Records each listed file's identity, trusting it only when the file is a regular
 * file of the listed size whose inode has not changed since the manifest was written (a publish
 * places files before it commits, so a later change belongs to the next generation).
 * Throws NotFoundError when there is no manifest, ManifestError when it is invalid, IoError.
 */
export async function loadSnapshot(root: string, options: LoadOptions = {}): Promise<Snapshot> {
  const layout = mirrorLayout(root);
  const cache = options.retainedCache ?? new Map();
  for (let attempt = 1; ; attempt += 1) {
    const warnings: string[] = [];
    const read = await readSmall(layout.manifest, MAX_MANIFEST_BYTES);
    if (read === undefined) throw new NotFoundError(`${root} is not a mirror: there is no committed manifest at ${layout.manifest}`);
    const stamp = stampOf(read.st);
    let signature = await readSmall(layout.signature, MAX_SIGNATURE_BYTES).catch((err: unknown) => {
      warnings.push(`the signature is not served: ${(err as Error).message}`);
      return undefined;
    });
    // The signature is written before the manifest it signs: one newer than the manifest is the next commit's.
    if (signature !== undefined && signature.st.mtimeNs > stamp.mtimeNs) {
      if (attempt <= SIGNATURE_WAITS) {
        await sleep(RETRY_MS);
        continue;
      }
      warnings.push("the signature on disk is newer than the manifest (an interrupted commit?): not served until the next commit");
      signature = undefined;
    }
    const manifest = parseManifest(read.bytes, layout.manifest);
    const createdMs = Date.parse(manifest.created);
    const manifestMtimeMs = Number(stamp.mtimeNs / 1_000_000n);

    const dirs = new Set<string>([""]);
    for (const f of manifest.files) {
      for (const dir of parents(f.path)) {
        if (dirs.has(dir)) break;
        dirs.add(dir);
      }
    }
    // A folder that is a symlink (or not a folder) would lead outside the tree: nothing below it is opened.
    const badDirs = new Set<string>();
    await inSlices([...dirs], (dir) => {
      if (dir === "") return;
      try {
        const st = lstatSync(join(root, dir), { throwIfNoEntry: false });
        if (st !== undefined && !st.isDirectory()) badDirs.add(dir);
      } catch {
        // Unreadable: the files below cannot be opened either, which their own stat shows.
      }
    });
    const files = new Map<string, SnapshotFile>();
    const byHash = new Map<string, HashEntry>();
    let unverifiedFiles = 0;
    let totalBytes = 0;
    const entries: SnapshotFile[] = [];
    await inSlices(manifest.files, (f) => {
      totalBytes += f.size;
      let blocked = false;
      for (const dir of parents(f.path)) if (badDirs.has(dir)) blocked = true;
      let trusted: FileIdentity | undefined;
      let mtimeMs = createdMs;
      if (!blocked) {
        try {
          const st = lstatSync(join(root, f.path), { bigint: true, throwIfNoEntry: false });
          if (st?.isFile()) {
            mtimeMs = Number(st.mtimeNs / 1_000_000n);
            if (st.size === BigInt(f.size) && st.ctimeNs <= stamp.mtimeNs) trusted = identityOf(st);
          } else if (st !== undefined) {
            blocked = true;
          }
        } catch {
          // Unreadable now: not trusted, so it is served only once a copy proves its bytes.
        }
      }
      if (trusted === undefined) unverifiedFiles += 1;
      entries.push({ path: f.path, size: f.size, sha256: f.sha256, mtimeMs, trusted, blocked });
    });
    for (const entry of entries) {
      files.set(entry.path, entry);
      if (!byHash.has(entry.sha256)) byHash.set(entry.sha256, { size: entry.size, file: entry });
    }
    const retained = await loadRetained(root, manifest.version, cache, warnings);
    for (const hashes of retained.hashes) {
      for (const [sha256, size] of hashes) if (!byHash.has(sha256)) byHash.set(sha256, { size });
    }

    const documents = new Map<string, PublicDocument>();
    documents.set(MANIFEST_NAME, document(read.bytes, "application/json", manifestMtimeMs));
    if (signature !== undefined) documents.set(SIGNATURE_NAME, document(signature.bytes, "text/plain; charset=utf-8", Number(signature.st.mtimeNs / 1_000_000n)));
    // Derived from the manifest, exactly as every writer renders it, so it always matches what is served.
    documents.set(SUMS_NAME, document(Buffer.from(renderSha256Sums(manifest.files), "utf8"), "text/plain; charset=utf-8", manifestMtimeMs));

    // A commit that finished while this was built makes it stale: start over with the new manifest.
    if (!sameStamp(await statManifest(root), stamp)) {
      if (attempt >= MAX_ATTEMPTS) throw new IoError(`${layout.manifest}: keeps changing while it is read; giving up`);
      continue;
    }
    return {
      root,
      version: manifest.version,
      createdMs,
      expiresMs: manifest.expires === undefined ? undefined : Date.parse(manifest.expires),
      files,
      dirs,
      byHash,
      documents,
      totalBytes,
      stamp,
      retained: retained.versions,
      unverifiedFiles,
      warnings,
    };
  }
}
