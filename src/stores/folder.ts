// Folder store: a mirror on a local (or mounted) file system, with content-addressed staging, a publish journal and retained generations.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, writeFile as writeFileCallback } from "node:fs";
import { copyFile, constants, link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, statfs, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { fsError, IntegrityError, IoError, NotFoundError, UpdateMirrorError } from "../core/errors.js";
import { type Manifest, parseManifest, serializeManifest } from "../core/manifest.js";
import type { Committed, ManifestSigner, MirrorState, ReceiveExpectation, Store } from "../core/store.js";
import { eachLimit } from "../core/each-limit.js";
import { fsyncDir, writeFileAtomic } from "../fs/atomic-write.js";
import { syncFileSystem } from "../fs/sync-fs.js";
import { mirrorLayout } from "../mirror/layout.js";
import { commitMirrorMetadata, readMirrorManifest, readMirrorSignature } from "../mirror/metadata.js";
import { addRetainedHashes, retainedLayout, retainedVersions } from "../mirror/retained.js";
import { acquireLock } from "./folder-lock.js";
import { planPublish } from "./publish-plan.js";

/**
 * A publish in progress, written before the first file moves so a crash can be rolled forward. The
 * manifest to commit is written beside it (`journal.manifest.json`) as its bytes, not embedded: a
 * manifest of 40,000 files escaped into JSON, once per phase, cost tens of MB of heap per publish.
 */
interface Journal {
  /** "retain" until every replaced file is safe among the objects; then "place". */
  phase: "retain" | "place";
  /** The manifest's text, in journals written before it moved beside the journal; still rolled forward. */
  manifest?: string;
  signature?: string;
  keepGenerations: number;
  place: { path: string; sha256: string }[];
  remove: string[];
  /** Paths whose current content must be kept as an object before it is replaced or removed. */
  retain: { path: string; sha256: string }[];
}

const EMPTY_STATE: MirrorState = { highestVersion: 0, sources: {}, trusted: {}, listed: {} };
const CHUNK = 1 << 20;
// Bodies up to this size are staged from memory in one go (see receiveSmall).
const SMALL_OBJECT = 64 * 1024;
// Staged bytes between background flushes (see `staged`).
const FLUSH_EVERY = 64 * 1024 * 1024;
// Renames and links in flight while placing: enough to keep libuv's four threads busy.
const PLACE_CONCURRENCY = 8;
const METADATA_MARGIN = 1 << 20;

// The callback form: one trip per step with less overhead than a FileHandle, at 40,000 files.
const writeFileAsync = promisify(writeFileCallback);
const writeFileExclusive = (file: string, data: Buffer) => writeFileAsync(file, data, { flag: "wx" });

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

export function createFolderStore(root: string): Store {
  const layout = mirrorLayout(root);
  const dirs = {
    objects: layout.objectsDir,
    partial: join(layout.privateDir, "partial"),
    manifests: layout.manifestsDir,
  };
  const files = {
    journal: layout.journal,
    journalManifest: join(layout.privateDir, "journal.manifest.json"),
    state: join(layout.privateDir, "state.json"),
    lock: join(layout.privateDir, "lock"),
  };
  const label = root;
  // The names of objects and retained manifests are the mirror format's (mirror/retained.ts), shared with readers.
  const retained = retainedLayout(root);
  const objectPath = retained.object;
  const payloadPath = (path: string) => join(root, ...path.split("/"));

  // What staging holds, listed once per store: one readdir instead of a stat per file of a large plan.
  // Objects staged by an earlier process are hashed once before use (`verified`), since without a
  // per-file fsync a power cut may have left them with the right size and the wrong bytes.
  let indexed: Promise<{ objects: Set<string>; verified: Set<string>; partials: Set<string> }> | undefined;
  function staging() {
    indexed ??= (async () => {
      const list = (dir: string) => readdir(dir).catch((err: unknown) => (isMissing(err) ? [] : Promise.reject(fsError(err, dir))));
      const [objects, partials] = await Promise.all([list(dirs.objects), list(dirs.partial)]);
      return { objects: new Set(objects), verified: new Set<string>(), partials: new Set(partials.filter((n) => !n.endsWith(".validator"))) };
    })();
    return indexed;
  }
  let dirsReady: Promise<void> | undefined;
  function ensureDirs(): Promise<void> {
    dirsReady ??= Promise.all([dirs.objects, dirs.partial, layout.tmpDir].map((d) => mkdir(d, { recursive: true }))).then(
      () => undefined,
      (err: unknown) => {
        dirsReady = undefined;
        throw fsError(err, layout.privateDir);
      },
    );
    return dirsReady;
  }
  /** The committed manifest as last read by readCommitted (valid until the next publish). */
  let lastRead: Awaited<ReturnType<typeof readMirrorManifest>>;
  /** Folders made during this publish, so each is created once, not once per file. */
  const madeDirs = new Set<string>();
  async function mkdirOnce(dir: string): Promise<void> {
    if (madeDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    madeDirs.add(dir);
  }

  async function exists(file: string): Promise<boolean> {
    try {
      await stat(file);
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw fsError(err, file);
    }
  }

  /**
   * Puts object `sha256` at `to`: by rename when this is its last use in the publish (the object is
   * consumed), otherwise by hard link (or, where links are unsupported, a copy) to a temp name and a
   * rename, so a reader never sees a half-written file.
   */
  async function placeFile(sha256: string, to: string, consume: boolean): Promise<void> {
    const from = objectPath(sha256);
    await mkdirOnce(dirname(to));
    if (consume) {
      await rename(from, to);
    } else {
      const tmp = join(layout.tmpDir, `place.${randomBytes(6).toString("hex")}`);
      try {
        await link(from, tmp);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EXDEV" && code !== "EMLINK") throw err;
        await copyFile(from, tmp, constants.COPYFILE_FICLONE);
      }
      await rename(tmp, to);
    }
  }

  /** Keeps the current content of `path` as object `sha256`, unless that object exists or the file is gone. */
  async function retain(path: string, sha256: string): Promise<void> {
    const object = objectPath(sha256);
    const index = await staging();
    if (index.objects.has(sha256)) return;
    try {
      await link(payloadPath(path), object);
    } catch (err) {
      if (isMissing(err)) return;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST") return;
      if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EMLINK") throw err;
      const tmp = join(layout.tmpDir, `retain.${randomBytes(6).toString("hex")}`);
      await copyFile(payloadPath(path), tmp, constants.COPYFILE_FICLONE);
      await rename(tmp, object);
    }
    // Content that was published is trusted as it is: it passed verification when it was placed.
    index.objects.add(sha256);
    index.verified.add(sha256);
  }

  // Staged bytes are flushed in the background every FLUSH_EVERY bytes, so the disk writes them while
  // the network is busy, instead of all at once in the publish's syncfs (seconds for a full mirror).
  let stagedSinceFlush = 0;
  let flushing: Promise<unknown> | undefined;
  function staged(bytes: number): void {
    stagedSinceFlush += bytes;
    if (stagedSinceFlush < FLUSH_EVERY || flushing) return;
    stagedSinceFlush = 0;
    flushing = syncFileSystem(root).finally(() => {
      flushing = undefined;
    });
  }

  /** Makes the whole file system durable, or, without syncfs, at least the folders whose entries changed. */
  async function makeDurable(dirsTouched: Iterable<string>): Promise<void> {
    await flushing;
    if (await syncFileSystem(root)) return;
    for (const dir of dirsTouched) await fsyncDir(dir).catch(() => undefined);
  }

  /** Removes now-empty folders above a removed file, stopping at the root. */
  async function pruneEmptyDirs(path: string): Promise<void> {
    const segments = path.split("/").slice(0, -1);
    while (segments.length > 0) {
      try {
        await rmdir(join(root, ...segments));
      } catch {
        return;
      }
      segments.pop();
    }
  }

  /** The manifest a journal commits: embedded in older journals, beside the journal since. */
  async function journalManifest(journal: Journal): Promise<Buffer> {
    return journal.manifest === undefined ? await readFile(files.journalManifest) : Buffer.from(journal.manifest, "utf8");
  }

  /**
   * Carries out a journal; `parsed` and `bytes` are the manifest's parsed form and bytes when the
   * caller already has them (a replay reads them).
   */
  async function runJournal(journal: Journal, parsed?: Manifest, bytes?: Buffer): Promise<void> {
    await ensureDirs();
    const index = await staging();
    if (journal.phase === "retain") {
      for (const r of journal.retain) await retain(r.path, r.sha256);
      // Staged objects were written without fsync: they must be durable before any is placed.
      await makeDurable([dirs.objects]);
      // A replay must not retain once placing has begun (it would keep new content under an old
      // hash). With nothing to retain there is no such hazard, and no second copy of a long journal.
      if (journal.retain.length > 0) {
        journal.phase = "place";
        await writeFileAtomic(files.journal, JSON.stringify(journal), { tmpDir: layout.tmpDir });
      }
    }
    // One lane per content: uses of the same object run in order, the last one consuming it, so a
    // missing object on a replay means every use of it was already placed.
    const bySha = new Map<string, string[]>();
    for (const p of journal.place) {
      const paths = bySha.get(p.sha256);
      if (paths) paths.push(p.path);
      else bySha.set(p.sha256, [p.path]);
    }
    const touched = new Set<string>();
    await eachLimit([...bySha.keys()], PLACE_CONCURRENCY, async (sha256) => {
      const paths = bySha.get(sha256) as string[];
      if (!index.objects.has(sha256) && !(await exists(objectPath(sha256)))) {
        for (const path of paths) {
          if (!(await exists(payloadPath(path)))) throw new NotFoundError(`${label}: nothing staged for ${path} (${sha256})`);
        }
        return;
      }
      for (const [i, path] of paths.entries()) {
        const last = i === paths.length - 1;
        await placeFile(sha256, payloadPath(path), last);
        touched.add(dirname(payloadPath(path)));
      }
      index.objects.delete(sha256);
      index.verified.delete(sha256);
    });
    for (const path of journal.remove) {
      await unlink(payloadPath(path)).catch((err: unknown) => {
        if (!isMissing(err)) throw err;
      });
      touched.add(dirname(payloadPath(path)));
      await pruneEmptyDirs(path);
    }
    // Renames must be durable before the manifest that lists their results is.
    await makeDurable(touched);
    const manifestBytes = bytes ?? (await journalManifest(journal));
    const manifest = parsed ?? parseManifest(manifestBytes, files.journal);
    await commitMirrorMetadata(root, manifest, journal.signature === undefined ? undefined : () => journal.signature as string, manifestBytes);
    await unlink(files.journal);
    // Only once the journal is gone, so a journal never lacks its manifest.
    await rm(files.journalManifest, { force: true });
    madeDirs.clear();
    await pruneGenerations(manifest, journal.keepGenerations);
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
    const index = await staging();
    const pending = writing.get(sha256);
    if (pending) await pending.catch(() => undefined);
    if (index.verified.has(sha256)) return;
    const viaTemp = async () => {
      const tmp = join(layout.tmpDir, `object.${randomBytes(6).toString("hex")}`);
      try {
        await writeFile(tmp, data);
        await rename(tmp, objectPath(sha256));
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    };
    const write = (async () => {
      if (index.objects.has(sha256)) return viaTemp();
      try {
        await writeFileExclusive(objectPath(sha256), data);
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
    index.objects.add(sha256);
    index.verified.add(sha256);
  }

  /**
   * A small body is gathered in memory and written in one go off the main thread: for tens of
   * thousands of small files, no partial, sidecar or rename each. Nothing is kept for a resume (a
   * small file is cheaper to fetch again), so every failure leaves nothing behind.
   */
  async function receiveSmall(key: string, body: AsyncIterable<Uint8Array>, expect: ReceiveExpectation): Promise<{ sha256: string; size: number }> {
    const index = await staging();
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
    const sha256 = hash.digest("hex");
    if (expect.sha256 !== undefined && sha256 !== expect.sha256) throw new IntegrityError(`${key}: SHA-256 is ${sha256}, expected ${expect.sha256}`);
    try {
      await writeObject(sha256, chunks.length === 1 ? Buffer.from((chunks[0] as Uint8Array).buffer, (chunks[0] as Uint8Array).byteOffset, size) : Buffer.concat(chunks, size));
    } catch (err) {
      throw fsError(err, `${label}: staging ${key}`);
    }
    if (index.partials.has(key)) {
      // An earlier attempt left a partial of this file: it is no longer needed.
      await Promise.all([rm(join(dirs.partial, key), { force: true }), rm(join(dirs.partial, `${key}.validator`), { force: true })]);
      index.partials.delete(key);
    }
    return { sha256, size };
  }

  async function freeBytes(): Promise<number> {
    const target = (await exists(layout.privateDir)) ? layout.privateDir : root;
    const fs = await statfs(target).catch((err: unknown) => {
      throw fsError(err, target);
    });
    return fs.bavail * fs.bsize;
  }

  const generations = () => retainedVersions(root);

  async function readGeneration(version: number): Promise<Manifest> {
    const file = retained.manifest(version);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      throw fsError(err, `${label}: generation ${version} (${file})`);
    }
    return parseManifest(bytes, file);
  }

  /** Keeps the newest `keep` previous manifests and the objects they need that the tree does not hold. */
  async function pruneGenerations(current: Manifest, keep: number): Promise<void> {
    const versions = (await generations()).filter((v) => v !== current.version);
    const kept = versions.slice(0, keep);
    for (const v of versions.slice(keep)) await rm(retained.manifest(v), { force: true });
    const needed = new Set<string>();
    for (const v of kept) await addRetainedHashes(root, v, needed);
    for (const f of current.files) needed.delete(f.sha256);
    const index = await staging();
    const unneeded = [...index.objects].filter((name) => !needed.has(name));
    await eachLimit(unneeded, PLACE_CONCURRENCY, async (name) => {
      await rm(objectPath(name), { force: true });
      index.objects.delete(name);
      index.verified.delete(name);
    });
  }

  return {
    label,

    lock: (command) => acquireLock(files.lock, command, label),

    async recover() {
      let text: string;
      try {
        text = await readFile(files.journal, "utf8");
      } catch (err) {
        if (isMissing(err)) return undefined;
        throw fsError(err, files.journal);
      }
      const journal = JSON.parse(text) as Journal;
      lastRead = undefined;
      let manifest: Manifest;
      try {
        const bytes = await journalManifest(journal);
        manifest = parseManifest(bytes, files.journal);
        await runJournal(journal, manifest, bytes);
      } catch (err) {
        throw fsError(err, `${label}: finishing the interrupted publish`);
      }
      return manifest.version;
    },

    async readCommitted(): Promise<Committed | undefined> {
      const loaded = await readMirrorManifest(root);
      lastRead = loaded;
      return loaded && { ...loaded, signed: (await readMirrorSignature(root)) !== undefined };
    },

    async readState(): Promise<MirrorState> {
      try {
        return { ...EMPTY_STATE, ...(JSON.parse(await readFile(files.state, "utf8")) as Partial<MirrorState>) };
      } catch (err) {
        if (isMissing(err)) return structuredClone(EMPTY_STATE);
        if (err instanceof SyntaxError) throw new UpdateMirrorError("E_IO", `${files.state}: state file is damaged (${err.message}); remove it to start afresh`);
        throw fsError(err, files.state);
      }
    },

    async writeState(state) {
      await writeFileAtomic(files.state, `${JSON.stringify(state)}\n`, { tmpDir: layout.tmpDir });
    },

    async hasObject(sha256, size) {
      const index = await staging();
      if (!index.objects.has(sha256)) return false;
      if (index.verified.has(sha256)) return true;
      const file = objectPath(sha256);
      const hash = createHash("sha256");
      let bytes = 0;
      try {
        for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) {
          hash.update(chunk as Buffer);
          bytes += (chunk as Buffer).length;
        }
      } catch (err) {
        if (!isMissing(err)) throw fsError(err, file);
      }
      if (bytes === size && hash.digest("hex") === sha256) {
        index.verified.add(sha256);
        return true;
      }
      await rm(file, { force: true });
      index.objects.delete(sha256);
      return false;
    },

    async partial(key) {
      if (!(await staging()).partials.has(key)) return { size: 0 };
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

    async receive(key, body, expect: ReceiveExpectation) {
      await ensureDirs();
      const index = await staging();
      if (!expect.append && expect.size <= SMALL_OBJECT) return receiveSmall(key, body, expect);
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
      const hadPartial = index.partials.has(key);
      const dropPartial = async () => {
        await Promise.all([rm(partial, { force: true }), hadPartial ? rm(sidecar, { force: true }) : undefined]);
        index.partials.delete(key);
      };
      const handle = await open(partial, expect.append ? "a" : "w").catch((err: unknown) => {
        throw fsError(err, partial);
      });
      index.partials.add(key);
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
      const sha256 = hash.digest("hex");
      if (expect.sha256 !== undefined && sha256 !== expect.sha256) {
        await dropPartial();
        throw new IntegrityError(`${key}: SHA-256 is ${sha256}, expected ${expect.sha256}`);
      }
      try {
        // No fsync here: publish makes every staged object durable at once before placing any.
        await rename(partial, objectPath(sha256));
        if (hadPartial) await rm(sidecar, { force: true });
      } catch (err) {
        throw fsError(err, `${label}: staging ${key}`);
      }
      index.partials.delete(key);
      index.objects.add(sha256);
      index.verified.add(sha256);
      staged(size);
      return { sha256, size };
    },

    freeBytes,

    async publish(next, options: { sign?: ManifestSigner; keepGenerations: number }) {
      // The engine read the committed manifest moments ago under the same lock: reuse it, not a third parse.
      const committed = lastRead ?? (await readMirrorManifest(root));
      const current = committed?.manifest.files ?? [];
      const { place, remove, retain: retainList } = planPublish(current, next.files);
      // Content the new state needs that is not staged may still sit in the tree under another name.
      let currentBySha: Map<string, string> | undefined;
      const index = await staging();
      for (const p of place) {
        if (index.objects.has(p.sha256)) continue;
        currentBySha ??= new Map(current.map((f) => [f.sha256, f.path]));
        const from = currentBySha.get(p.sha256);
        if (from === undefined) throw new NotFoundError(`${label}: nothing staged for ${p.path} (${p.sha256})`);
        retainList.unshift({ path: from, sha256: p.sha256 });
      }
      const bytes = serializeManifest(next);
      // The journal, the retained manifest, SHA256SUMS and the manifest itself all need room; running
      // out half-way through placing files would leave a publish that only more space can finish.
      const free = await freeBytes();
      if (free < 4 * bytes.length + METADATA_MARGIN) {
        throw new IoError(`${label}: only ${free} bytes free, not enough to publish version ${next.version} safely (needs about ${4 * bytes.length + METADATA_MARGIN}); nothing was changed`);
      }
      const journal: Journal = {
        phase: "retain",
        keepGenerations: options.keepGenerations,
        place,
        remove,
        retain: retainList,
        ...(options.sign && { signature: options.sign(bytes) }),
      };
      try {
        if (committed) {
          await mkdir(dirs.manifests, { recursive: true });
          await writeFileAtomic(retained.manifest(committed.manifest.version), committed.bytes, { tmpDir: layout.tmpDir });
        }
        // The manifest first: a journal is never without the manifest it commits.
        await writeFileAtomic(files.journalManifest, bytes, { tmpDir: layout.tmpDir });
        await writeFileAtomic(files.journal, JSON.stringify(journal), { tmpDir: layout.tmpDir });
        await runJournal(journal, next, bytes);
      } catch (err) {
        throw fsError(err, `${label}: publishing version ${next.version}`);
      } finally {
        lastRead = undefined;
      }
    },

    generations,
    readGeneration,
  };
}
