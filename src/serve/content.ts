// The bytes behind a listed file or hash: from its path while the inode is the one recorded, else from a retained object, checked by hash when in doubt.
import { createHash } from "node:crypto";
import { type BigIntStats, close, fstat, open, read } from "node:fs";
import { realpath } from "node:fs/promises";
import { join } from "node:path";
import { retainedLayout } from "../mirror/retained.js";
import { type FileIdentity, type HashEntry, identityOf, OPEN_NOFOLLOW, sameIdentity, type Snapshot, type SnapshotFile } from "./snapshot.js";

/** Bytes known to be the listed ones: held in memory, or an open file descriptor the caller reads and closes. */
export type Content = { kind: "buffer"; data: Buffer } | { kind: "fd"; fd: number; size: number };

export interface ContentOptions {
  /** Most bytes of small files kept in memory, by SHA-256 (so the cache can never disagree with a manifest); 0 turns it off. */
  cacheBytes: number;
  /** Files up to this size are read whole (and cached); larger ones are handed out as a descriptor. Default 64 KiB. */
  smallFileBytes?: number;
  /** Told of every hash check that matched a SHA-256, so sibling server processes can learn it (see ContentStore.learn). */
  onVerdict?: (identity: string, sha256: string) => void;
}

/**
 * Finds bytes for snapshot entries. A path is opened without following a final symlink and without
 * blocking on a FIFO, and its descriptor used only when fstat shows the identity recorded for the
 * entry (so a rename during a publish can never mix generations: the descriptor keeps the inode it
 * opened). Otherwise the retained object `private/objects/<sha256>` is used, and, when `check` is
 * set, bytes of unknown provenance are hashed once (the result remembered per identity) and used
 * only when the hash matches. Anything under a symlinked folder is never opened from its path.
 */
export interface ContentStore {
  /** Small-file bytes with this SHA-256 when they are in memory (no I/O, for the hot path). */
  cached(sha256: string): Buffer | undefined;
  /** Bytes for `file`, or undefined when none can be vouched for without a hash check (`check` false) or at all. */
  forFile(snapshot: Snapshot, file: SnapshotFile, check: boolean): Promise<Content | undefined>;
  /** Bytes with this SHA-256 (an entry of `snapshot.byHash`), from a current file or a retained object. */
  forHash(snapshot: Snapshot, sha256: string, entry: HashEntry, check: boolean): Promise<Content | undefined>;
  /**
   * Records that the file with this identity (as onVerdict reported it) holds bytes with this SHA-256,
   * found by a sibling server process on the same files, so this one need not hash them again.
   */
  learn(identity: string, sha256: string): void;
  /** Closes the descriptor of content that will not be streamed (HEAD, a client gone). */
  release(content: Content): void;
  stats(): { cachedFiles: number; cachedBytes: number; hashChecks: number };
}

/** A hash check's result: the digest, and the bytes when the file was small enough to be read whole. */
interface Hashed {
  sha256: string;
  data: Buffer | undefined;
}

const SMALL_FILE = 64 * 1024;
const HASH_CHUNK = 1 << 20;
// Verdicts remembered by identity; cleared wholesale past this many, which only costs re-hashing.
const MAX_VERDICTS = 100_000;

function openFd(path: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    // ENOENT, ELOOP (a symlink under O_NOFOLLOW), ENOTDIR, EACCES...: no bytes from this path.
    open(path, OPEN_NOFOLLOW, (err, fd) => resolve(err ? undefined : fd));
  });
}

function fstatFd(fd: number): Promise<BigIntStats | undefined> {
  return new Promise((resolve) => {
    fstat(fd, { bigint: true }, (err, st) => resolve(err ? undefined : st));
  });
}

function closeFd(fd: number): void {
  close(fd, () => undefined);
}

function readAt(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buffer, offset, length, position, (err, bytes) => (err ? reject(err) : resolve(bytes)));
  });
}

/** Reads exactly `size` bytes from the start; undefined when the file turns out shorter or unreadable. */
async function readWhole(fd: number, size: number): Promise<Buffer | undefined> {
  const data = Buffer.allocUnsafe(size);
  let at = 0;
  try {
    while (at < size) {
      const got = await readAt(fd, data, at, size - at, at);
      if (got === 0) return undefined;
      at += got;
    }
  } catch {
    return undefined;
  }
  return data;
}

async function hashFd(fd: number, size: number): Promise<string | undefined> {
  const hash = createHash("sha256");
  const chunk = Buffer.allocUnsafe(Math.min(HASH_CHUNK, Math.max(1, size)));
  let at = 0;
  try {
    while (at < size) {
      const got = await readAt(fd, chunk, 0, Math.min(chunk.length, size - at), at);
      if (got === 0) return undefined;
      hash.update(chunk.subarray(0, got));
      at += got;
    }
  } catch {
    return undefined;
  }
  return hash.digest("hex");
}

function identityKey(id: FileIdentity): string {
  return `${id.dev}:${id.ino}:${id.size}:${id.mtimeNs}`;
}

/** Least-recently-used small files by SHA-256. */
class SmallCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;
  constructor(private readonly max: number) {}

  get(sha256: string): Buffer | undefined {
    const data = this.entries.get(sha256);
    if (data !== undefined) {
      this.entries.delete(sha256);
      this.entries.set(sha256, data);
    }
    return data;
  }

  set(sha256: string, data: Buffer): void {
    if (this.max <= 0 || data.length > this.max || this.entries.has(sha256)) return;
    this.entries.set(sha256, data);
    this.bytes += data.length;
    for (const [key, old] of this.entries) {
      if (this.bytes <= this.max) break;
      this.entries.delete(key);
      this.bytes -= old.length;
    }
  }

  stats(): { cachedFiles: number; cachedBytes: number } {
    return { cachedFiles: this.entries.size, cachedBytes: this.bytes };
  }
}

export function createContentStore(options: ContentOptions): ContentStore {
  const small = options.smallFileBytes ?? SMALL_FILE;
  const cache = new SmallCache(options.cacheBytes);
  /** identity -> the SHA-256 its bytes were found to have. */
  const verdicts = new Map<string, string>();
  const hashing = new Map<string, Promise<Hashed | undefined>>();
  let hashChecks = 0;

  function remember(key: string, sha256: string): void {
    if (verdicts.size >= MAX_VERDICTS) verdicts.clear();
    verdicts.set(key, sha256);
  }

  /**
   * The SHA-256 of the bytes behind `fd`, hashed at most once per identity; undefined when they
   * changed while being read. A small file is read whole for this, and its bytes come along so that
   * the answer needs no second read.
   */
  function hashOf(fd: number, id: FileIdentity): Promise<Hashed | undefined> {
    const key = identityKey(id);
    const known = verdicts.get(key);
    if (known !== undefined) return Promise.resolve({ sha256: known, data: undefined });
    let pending = hashing.get(key);
    if (pending === undefined) {
      hashChecks += 1;
      pending = (async () => {
        const size = Number(id.size);
        const data = size <= small ? await readWhole(fd, size) : undefined;
        const sha256 = data !== undefined ? createHash("sha256").update(data).digest("hex") : size <= small ? undefined : await hashFd(fd, size);
        // Written in place while being hashed: the digest describes no version of the file.
        const after = await fstatFd(fd);
        if (sha256 === undefined || after === undefined || !sameIdentity(identityOf(after), id)) return undefined;
        remember(key, sha256);
        options.onVerdict?.(key, sha256);
        return { sha256, data };
      })().finally(() => hashing.delete(key));
      hashing.set(key, pending);
    }
    return pending;
  }

  /** Hands out the bytes behind a vouched-for descriptor: small files read whole (and cached), large ones as the descriptor. `data`: the small file's bytes, already read. */
  async function deliver(fd: number, size: number, sha256: string, data?: Buffer): Promise<Content | undefined> {
    if (size > small) return { kind: "fd", fd, size };
    const bytes = data ?? (await readWhole(fd, size));
    closeFd(fd);
    if (bytes === undefined) return undefined;
    cache.set(sha256, bytes);
    return { kind: "buffer", data: bytes };
  }

  /** Opens `path` as a regular file of `size` bytes; undefined (closed) otherwise. */
  async function openSized(path: string, size: number): Promise<{ fd: number; id: FileIdentity } | undefined> {
    const fd = await openFd(path);
    if (fd === undefined) return undefined;
    const st = await fstatFd(fd);
    if (st === undefined || !st.isFile() || st.size !== BigInt(size)) {
      closeFd(fd);
      return undefined;
    }
    return { fd, id: identityOf(st) };
  }

  async function fromObject(snapshot: Snapshot, sha256: string, size: number, check: boolean): Promise<Content | undefined> {
    const opened = await openSized(retainedLayout(snapshot.root).object(sha256), size);
    if (opened === undefined) return undefined;
    const known = verdicts.get(identityKey(opened.id));
    // Objects may be mid-write or torn by a crash: one is used only once its bytes were hashed.
    if (known === sha256) return deliver(opened.fd, size, sha256);
    const hashed = check ? await hashOf(opened.fd, opened.id) : undefined;
    if (hashed?.sha256 === sha256) return deliver(opened.fd, size, sha256, hashed.data);
    closeFd(opened.fd);
    return undefined;
  }

  async function forFile(snapshot: Snapshot, file: SnapshotFile, check: boolean): Promise<Content | undefined> {
    const cached = cache.get(file.sha256);
    if (cached !== undefined) return { kind: "buffer", data: cached };
    const path = join(snapshot.root, file.path);
    const candidate = file.blocked ? undefined : await openSized(path, file.size);
    if (candidate !== undefined) {
      if ((file.trusted !== undefined && sameIdentity(candidate.id, file.trusted)) || verdicts.get(identityKey(candidate.id)) === file.sha256) {
        file.trusted = candidate.id;
        return deliver(candidate.fd, file.size, file.sha256);
      }
    }
    const object = await fromObject(snapshot, file.sha256, file.size, check);
    if (object !== undefined) {
      if (candidate !== undefined) closeFd(candidate.fd);
      return object;
    }
    if (candidate !== undefined && check) {
      // Bytes of unknown provenance at the path: only from inside the root, and only with the listed hash.
      const real = await realpath(path).catch(() => undefined);
      const hashed = real === path ? await hashOf(candidate.fd, candidate.id) : undefined;
      if (hashed?.sha256 === file.sha256) {
        file.trusted = candidate.id;
        return deliver(candidate.fd, file.size, file.sha256, hashed.data);
      }
    }
    if (candidate !== undefined) closeFd(candidate.fd);
    return undefined;
  }

  return {
    cached: (sha256) => cache.get(sha256),
    forFile,
    async forHash(snapshot, sha256, entry, check) {
      const cached = cache.get(sha256);
      if (cached !== undefined) return { kind: "buffer", data: cached };
      if (entry.file !== undefined) return forFile(snapshot, entry.file, check);
      return fromObject(snapshot, sha256, entry.size, check);
    },
    learn: remember,
    release(content) {
      if (content.kind === "fd") closeFd(content.fd);
    },
    stats: () => ({ ...cache.stats(), hashChecks }),
  };
}
