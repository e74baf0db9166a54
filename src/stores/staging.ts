// Content-addressed staging shared by the stores: verified objects by SHA-256, resumable partials, background flushes.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, writeFile as writeFileCallback, writeFileSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { fsError, IntegrityError, UpdateMirrorError } from "../core/errors.js";
import type { ReceiveExpectation } from "../core/store.js";
import { eachLimit } from "../core/each-limit.js";
import { fsyncDir } from "../fs/atomic-write.js";
import { fileDigest } from "../fs/file-digest.js";
import { fileSystemOf } from "../fs/file-systems.js";
import { syncFileSystem } from "../fs/sync-fs.js";
import { objectName } from "../mirror/layout.js";
import { listShardedObjects, makeMissingShards, type ShardFolders } from "./object-shards.js";

const CHUNK = 1 << 20;
// Bodies up to this size are staged from memory in one go (see receiveSmall).
const SMALL_OBJECT = 64 * 1024;
// Staged bytes between background flushes (see `staged`).
const FLUSH_EVERY = 64 * 1024 * 1024;
const REMOVE_CONCURRENCY = 8;

// The callback form: one trip per step with less overhead than a FileHandle, at 40,000 files.
const writeFileAsync = promisify(writeFileCallback);
const writeFileExclusive = (file: string, data: Buffer) => writeFileAsync(file, data, { flag: "wx" });

export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** Where a store stages: every folder on the file system of the store's payload, so renames never cross devices. */
export interface StagingDirs {
  /** Verified content, `objects/<ab>/<sha256>` (mirror/layout.ts objectName). */
  objects: string;
  /** Downloads in progress, `partial/<key>` with a `.validator` sidecar. */
  partial: string;
  /** Temporary names for atomic writes. */
  tmp: string;
  /** A path on the file system to flush (syncfs) and to measure free space on. */
  fileSystem: string;
}

/**
 * The staging area of one store. Objects written by this process are trusted; objects an earlier
 * process left are hashed once before use, since without a per-file fsync a power cut may have left
 * them with the right size and the wrong bytes. Every method is for the holder of the store's lock:
 * the first listing also moves objects an earlier version kept unsharded into their shard folders.
 * Throws IoError (via fsError) for storage failures.
 */
export interface Staging {
  readonly dirs: StagingDirs;
  objectPath(sha256: string): string;
  ensureDirs(): Promise<void>;
  /** True when the object exists (listed once per store, not stat'ed per file). */
  holds(sha256: string): Promise<boolean>;
  /** True when verified content with this hash is staged; a stale or torn object is deleted. */
  hasObject(sha256: string, size: number): Promise<boolean>;
  /** Records content that was put in place as an object by the store itself (a hard link of a published file). */
  adopt(sha256: string): Promise<void>;
  /** Forgets an object the store consumed (renamed away) or removed. */
  forget(sha256: string): Promise<void>;
  /** Every object name currently staged. */
  names(): Promise<string[]>;
  /** Removes the objects `keep` does not name. */
  prune(keep: (sha256: string) => boolean): Promise<void>;
  partial(key: string): Promise<{ size: number; validator?: string }>;
  /** The Store contract's receive (core/store.ts). */
  receive(label: string, key: string, body: AsyncIterable<Uint8Array>, expect: ReceiveExpectation): Promise<{ sha256: string; size: number }>;
  freeBytes(): Promise<number>;
  /** Makes the whole file system durable, or, without syncfs, at least the folders listed and the shard folders written to. */
  makeDurable(dirsTouched: Iterable<string>): Promise<void>;
  /** Removes temp files a crashed process left; only under the store's lock. */
  clearTmp(): Promise<void>;
}

export interface StagingOptions {
  /** Write small objects on the event loop (true) or through libuv's threads (false); by default, on the loop exactly when staging is on a local disk. */
  smallWritesOnLoop?: boolean;
}

export function createStaging(dirs: StagingDirs, options: StagingOptions = {}): Staging {
  const objectPath = (sha256: string) => join(dirs.objects, objectName(sha256));
  const shardOf = (sha256: string) => join(dirs.objects, sha256.slice(0, 2));
  /** Shard folders written to since the last makeDurable, for file systems without syncfs. */
  const touchedShards = new Set<string>();

  const list = (dir: string) => readdir(dir).catch((err: unknown) => (isMissing(err) ? [] : Promise.reject(fsError(err, dir))));
  const inObjects = (rel: string) => join(dirs.objects, ...rel.split("/"));
  const shardFolders: ShardFolders = {
    list: (rel) =>
      readdir(inObjects(rel), { withFileTypes: true }).then(
        (entries) => entries.map((e) => ({ name: e.name, isDirectory: e.isDirectory() })),
        (err: unknown) => (isMissing(err) ? [] : Promise.reject(fsError(err, inObjects(rel)))),
      ),
    mkdir: (rel) => mkdir(inObjects(rel), { recursive: true }).then(() => undefined),
    rename: (from, to) =>
      rename(inObjects(from), inObjects(to)).catch((err: unknown) => {
        throw fsError(err, inObjects(from));
      }),
  };

  // What staging holds, listed once: a readdir per shard instead of a stat per file of a large plan.
  let indexed: Promise<{ objects: Set<string>; shards: Set<string>; verified: Set<string>; partials: Set<string> }> | undefined;
  function index() {
    indexed ??= (async () => {
      const objects = new Set<string>();
      const [shards, partials] = await Promise.all([listShardedObjects(shardFolders, (sha256) => objects.add(sha256)), list(dirs.partial)]);
      return { objects, shards, verified: new Set<string>(), partials: new Set(partials.filter((n) => !n.endsWith(".validator"))) };
    })();
    return indexed;
  }
  /**
   * Small objects are written on the event loop when staging is on a local disk: creating and writing
   * a small file there takes tens of microseconds, less than handing each of its three steps (open,
   * write, close) to libuv's threads and waking the loop after each (a 40,000-file sync: ~10% less
   * wall time). On network and FUSE file systems a write waits for a server, so it stays off the loop.
   */
  let writeOnLoop = false;
  let dirsReady: Promise<void> | undefined;
  function ensureDirs(): Promise<void> {
    dirsReady ??= (async () => {
      await Promise.all([dirs.objects, dirs.partial, dirs.tmp].map((d) => mkdir(d, { recursive: true })));
      writeOnLoop = options.smallWritesOnLoop ?? (await fileSystemOf(dirs.objects)).localDisk;
      // Every shard folder up front, once per mirror: objects are then written without a mkdir each.
      await makeMissingShards(shardFolders, (await index()).shards);
    })().catch((err: unknown) => {
      dirsReady = undefined;
      throw fsError(err, dirs.objects);
    });
    return dirsReady;
  }

  // Staged bytes are flushed in the background every FLUSH_EVERY bytes, so the disk writes them while
  // the network is busy, instead of all at once in the publish's syncfs (seconds for a full mirror).
  let stagedSinceFlush = 0;
  let flushing: Promise<unknown> | undefined;
  function staged(bytes: number): void {
    stagedSinceFlush += bytes;
    if (stagedSinceFlush < FLUSH_EVERY || flushing) return;
    stagedSinceFlush = 0;
    flushing = syncFileSystem(dirs.fileSystem).finally(() => {
      flushing = undefined;
    });
  }

  /** Object writes under way, so two files with the same content never write one object at once. */
  const writing = new Map<string, Promise<void>>();

  /**
   * Writes a new object from memory. Straight under its final name with O_EXCL when no such object
   * exists (a crash mid-write leaves a torn object, which the next process hashes before any use, as
   * it does every object it did not write itself); through a temp name and a rename when one exists
   * but is unverified, because an existing object may be a hard link to a published file and must
   * never be opened for writing.
   */
  async function writeObject(sha256: string, data: Buffer): Promise<void> {
    const idx = await index();
    const pending = writing.get(sha256);
    if (pending) await pending.catch(() => undefined);
    if (idx.verified.has(sha256)) return;
    const viaTemp = async () => {
      const tmp = join(dirs.tmp, `object.${randomBytes(6).toString("hex")}`);
      try {
        await writeFile(tmp, data);
        await rename(tmp, objectPath(sha256));
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    };
    const write = (async () => {
      if (idx.objects.has(sha256)) return viaTemp();
      try {
        if (writeOnLoop) writeFileSync(objectPath(sha256), data, { flag: "wx" });
        else await writeFileExclusive(objectPath(sha256), data);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
          await rm(objectPath(sha256), { force: true });
          throw err;
        }
        await viaTemp();
      }
    })();
    writing.set(sha256, write);
    try {
      await write;
    } finally {
      writing.delete(sha256);
    }
    staged(data.length);
    touchedShards.add(shardOf(sha256));
    idx.objects.add(sha256);
    idx.verified.add(sha256);
  }

  /**
   * A small body is gathered in memory and written in one go off the main thread: for tens of
   * thousands of small files, no partial, sidecar or rename each. Nothing is kept for a resume (a
   * small file is cheaper to fetch again), so every failure leaves nothing behind.
   */
  async function receiveSmall(label: string, key: string, body: AsyncIterable<Uint8Array>, expect: ReceiveExpectation): Promise<{ sha256: string; size: number }> {
    const idx = await index();
    const hash = createHash("sha256");
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += chunk.length;
      if (size > expect.size) throw new IntegrityError(`${key}: more bytes than the expected ${expect.size}`);
      hash.update(chunk);
      chunks.push(chunk);
    }
    if (size < expect.size) throw new IntegrityError(`${key}: ended after ${size} of ${expect.size} bytes`, { retryable: true });
    const digest = hash.digest("hex");
    if (expect.sha256 !== undefined && digest !== expect.sha256) throw new IntegrityError(`${key}: SHA-256 is ${digest}, expected ${expect.sha256}`);
    // The caller's own string when it named the hash: 40,000 hashes are then held once, not twice.
    const sha256 = expect.sha256 ?? digest;
    try {
      await writeObject(sha256, chunks.length === 1 ? Buffer.from((chunks[0] as Uint8Array).buffer, (chunks[0] as Uint8Array).byteOffset, size) : Buffer.concat(chunks, size));
    } catch (err) {
      throw fsError(err, `${label}: staging ${key}`);
    }
    if (idx.partials.has(key)) {
      // An earlier attempt left a partial of this file: it is no longer needed.
      await Promise.all([rm(join(dirs.partial, key), { force: true }), rm(join(dirs.partial, `${key}.validator`), { force: true })]);
      idx.partials.delete(key);
    }
    return { sha256, size };
  }

  async function receive(label: string, key: string, body: AsyncIterable<Uint8Array>, expect: ReceiveExpectation): Promise<{ sha256: string; size: number }> {
    await ensureDirs();
    const idx = await index();
    if (!expect.append && expect.size <= SMALL_OBJECT) return receiveSmall(label, key, body, expect);
    const partial = join(dirs.partial, key);
    const sidecar = `${partial}.validator`;
    const hash = createHash("sha256");
    let size = 0;
    if (expect.append) {
      try {
        // The hash must cover the bytes already received, so read them once more.
        for await (const chunk of createReadStream(partial, { highWaterMark: CHUNK })) {
          hash.update(chunk as Buffer);
          size += (chunk as Buffer).length;
        }
      } catch (err) {
        throw fsError(err, partial);
      }
    }
    const hadPartial = idx.partials.has(key);
    const dropPartial = async () => {
      await Promise.all([rm(partial, { force: true }), hadPartial ? rm(sidecar, { force: true }) : undefined]);
      idx.partials.delete(key);
    };
    const handle = await open(partial, expect.append ? "a" : "w").catch((err: unknown) => {
      throw fsError(err, partial);
    });
    idx.partials.add(key);
    let failed: unknown;
    try {
      for await (const chunk of body) {
        size += chunk.length;
        if (size > expect.size) throw new IntegrityError(`${key}: more bytes than the expected ${expect.size}`);
        hash.update(chunk);
        await handle.write(chunk);
      }
    } catch (err) {
      failed = err;
    } finally {
      await handle.close();
    }
    // What a later resume needs: the bytes so far and the source's word for which version they are.
    const keepForResume = async () => {
      if (expect.validator !== undefined) await writeFile(sidecar, expect.validator).catch(() => undefined);
      else await rm(sidecar, { force: true });
    };
    if (failed !== undefined) {
      const code = (failed as NodeJS.ErrnoException).code;
      // A too-long body or a full disk leaves nothing worth resuming; a cut transfer does.
      if (failed instanceof IntegrityError || code === "ENOSPC") await dropPartial();
      else await keepForResume();
      if (failed instanceof UpdateMirrorError) throw failed;
      if (typeof code === "string" && !code.startsWith("UND_")) throw fsError(failed, `${label}: writing ${partial}`);
      throw failed;
    }
    if (size < expect.size) {
      await keepForResume();
      // Retryable: the partial is kept and the next attempt resumes from where this one stopped.
      throw new IntegrityError(`${key}: ended after ${size} of ${expect.size} bytes`, { retryable: true });
    }
    const digest = hash.digest("hex");
    if (expect.sha256 !== undefined && digest !== expect.sha256) {
      await dropPartial();
      throw new IntegrityError(`${key}: SHA-256 is ${digest}, expected ${expect.sha256}`);
    }
    const sha256 = expect.sha256 ?? digest;
    try {
      // No fsync here: publish makes every staged object durable at once before placing any.
      await rename(partial, objectPath(sha256));
      if (hadPartial) await rm(sidecar, { force: true });
    } catch (err) {
      throw fsError(err, `${label}: staging ${key}`);
    }
    idx.partials.delete(key);
    idx.objects.add(sha256);
    idx.verified.add(sha256);
    touchedShards.add(shardOf(sha256));
    staged(size);
    return { sha256, size };
  }

  return {
    dirs,
    objectPath,
    ensureDirs,

    async holds(sha256) {
      return (await index()).objects.has(sha256);
    },

    async hasObject(sha256, size) {
      const idx = await index();
      if (!idx.objects.has(sha256)) return false;
      if (idx.verified.has(sha256)) return true;
      const file = objectPath(sha256);
      const found = await fileDigest(file).catch((err: unknown) => {
        if (!isMissing(err)) throw fsError(err, file);
        return undefined;
      });
      if (found?.size === size && found.sha256 === sha256) {
        idx.verified.add(sha256);
        return true;
      }
      await rm(file, { force: true });
      idx.objects.delete(sha256);
      return false;
    },

    async adopt(sha256) {
      const idx = await index();
      touchedShards.add(shardOf(sha256));
      idx.objects.add(sha256);
      idx.verified.add(sha256);
    },

    async forget(sha256) {
      const idx = await index();
      idx.objects.delete(sha256);
      idx.verified.delete(sha256);
    },

    async names() {
      return [...(await index()).objects];
    },

    async prune(keep) {
      const idx = await index();
      const unneeded = [...idx.objects].filter((name) => !keep(name));
      await eachLimit(unneeded, REMOVE_CONCURRENCY, async (name) => {
        await rm(objectPath(name), { force: true });
        idx.objects.delete(name);
        idx.verified.delete(name);
      });
    },

    async partial(key) {
      if (!(await index()).partials.has(key)) return { size: 0 };
      const file = join(dirs.partial, key);
      let size: number;
      try {
        size = (await stat(file)).size;
      } catch (err) {
        if (isMissing(err)) return { size: 0 };
        throw fsError(err, file);
      }
      const validator = await readFile(`${file}.validator`, "utf8").catch(() => undefined);
      return validator === undefined ? { size } : { size, validator };
    },

    receive,

    async freeBytes() {
      let target = dirs.objects;
      for (const candidate of [dirs.objects, dirs.fileSystem]) {
        target = candidate;
        if (await stat(candidate).then(() => true, () => false)) break;
      }
      const fs = await statfs(target).catch((err: unknown) => {
        throw fsError(err, target);
      });
      return fs.bavail * fs.bsize;
    },

    async clearTmp() {
      const names = await readdir(dirs.tmp).catch(() => [] as string[]);
      await eachLimit(names, REMOVE_CONCURRENCY, (name) => rm(join(dirs.tmp, name), { recursive: true, force: true }));
    },

    async makeDurable(dirsTouched) {
      await flushing;
      const shards = [...touchedShards];
      touchedShards.clear();
      if (await syncFileSystem(dirs.fileSystem)) return;
      for (const dir of [...dirsTouched, ...shards]) await fsyncDir(dir).catch(() => undefined);
    },
  };
}
