// Folder store: a mirror on a local (or mounted) file system, with content-addressed staging, a publish journal and retained generations.
import { randomBytes } from "node:crypto";
import { copyFile, constants, link, mkdir, readFile, rename, rm, rmdir, stat, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fsError } from "../core/errors.js";
import { type Manifest, parseManifest } from "../core/manifest.js";
import type { Committed, ManifestSigner, Store } from "../core/store.js";
import { writeFileAtomic } from "../fs/atomic-write.js";
import { linkOrCopy } from "../fs/link-or-copy.js";
import { mirrorLayout } from "../mirror/layout.js";
import { commitMirrorMetadata, readMirrorManifest, readMirrorSignature } from "../mirror/metadata.js";
import { addRetainedHashes, retainedLayout, retainedVersions } from "../mirror/retained.js";
import { acquireLock } from "./folder-lock.js";
import { createStaging, isMissing } from "./staging.js";
import { appendHistoryFile, HISTORY_NAME, readHistoryFile } from "./history-file.js";
import { readStateFile, writeStateFile } from "./state-file.js";
import { type JournalTree, publishJournaled, recoverJournal } from "./journal.js";

// Renames and links in flight while placing: enough to keep libuv's four threads busy.
const PLACE_CONCURRENCY = 8;

export function createFolderStore(root: string): Store {
  const layout = mirrorLayout(root);
  const files = {
    journal: layout.journal,
    journalManifest: join(layout.privateDir, "journal.manifest.json"),
    state: join(layout.privateDir, "state.json"),
    history: join(layout.privateDir, HISTORY_NAME),
    lock: join(layout.privateDir, "lock"),
  };
  const label = root;
  // The names of objects and retained manifests are the mirror format's (mirror/retained.ts), shared with readers.
  const retained = retainedLayout(root);
  const stage = createStaging({ objects: layout.objectsDir, partial: join(layout.privateDir, "partial"), tmp: layout.tmpDir, fileSystem: root });
  const objectPath = stage.objectPath;
  const payloadPath = (path: string) => join(root, ...path.split("/"));

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
      await linkOrCopy(from, tmp);
      await rename(tmp, to);
    }
  }

  /** Keeps the current content of `path` as object `sha256`, unless that object exists or the file is gone. */
  async function retain(path: string, sha256: string): Promise<void> {
    const object = objectPath(sha256);
    if (await stage.holds(sha256)) return;
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
    await stage.adopt(sha256);
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

  /** Touched folders since the last flush, for file systems without syncfs. */
  const touched = new Set<string>();

  const tree: JournalTree = {
    label,
    placeConcurrency: PLACE_CONCURRENCY,
    prepare: () => stage.ensureDirs(),
    holdsObject: async (sha256) => (await stage.holds(sha256)) || (await exists(objectPath(sha256))),
    payloadExists: (path) => exists(payloadPath(path)),
    retain,
    async place(sha256, path, consume) {
      const to = payloadPath(path);
      await placeFile(sha256, to, consume);
      touched.add(dirname(to));
    },
    forget: (sha256) => stage.forget(sha256),
    async remove(path) {
      await unlink(payloadPath(path)).catch((err: unknown) => {
        if (!isMissing(err)) throw err;
      });
      touched.add(dirname(payloadPath(path)));
      await pruneEmptyDirs(path);
    },
    async makeDurable(what) {
      // Staged objects were written without fsync: they must be durable before any is placed.
      if (what === "objects") return stage.makeDurable([layout.objectsDir]);
      await stage.makeDurable(touched);
      touched.clear();
    },
    readJournal: () => readOptional(files.journal),
    writeJournal: (text) => writeFileAtomic(files.journal, text, { tmpDir: layout.tmpDir }),
    readJournalManifest: () => readFile(files.journalManifest),
    writeJournalManifest: (bytes) => writeFileAtomic(files.journalManifest, bytes, { tmpDir: layout.tmpDir }),
    async endJournal() {
      await unlink(files.journal);
      await rm(files.journalManifest, { force: true });
      madeDirs.clear();
    },
    async commit(manifest, bytes, signature) {
      await commitMirrorMetadata(root, manifest, signature === undefined ? undefined : () => signature, { bytes });
    },
    freeBytes: () => stage.freeBytes(),
    generations,
    async writeGeneration(version, bytes) {
      await mkdir(layout.manifestsDir, { recursive: true });
      await writeFileAtomic(retained.manifest(version), bytes, { tmpDir: layout.tmpDir });
    },
    removeGeneration: (version) => rm(retained.manifest(version), { force: true }),
    addGenerationHashes: (version, into) => addRetainedHashes(root, version, into),
    pruneObjects: (keep) => stage.prune(keep),
  };

  async function readOptional(file: string): Promise<string | undefined> {
    try {
      return await readFile(file, "utf8");
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw fsError(err, file);
    }
  }

  return {
    label,

    lock: (command) => acquireLock(files.lock, command, label),

    async recover() {
      await stage.clearTmp();
      lastRead = undefined;
      try {
        return await recoverJournal(tree);
      } catch (err) {
        throw fsError(err, `${label}: finishing the interrupted publish`);
      }
    },

    async readCommitted(): Promise<Committed | undefined> {
      const loaded = await readMirrorManifest(root);
      lastRead = loaded;
      return loaded && { ...loaded, signed: (await readMirrorSignature(root)) !== undefined };
    },

    readState: () => readStateFile(files.state),
    writeState: (state) => writeStateFile(files.state, state, layout.tmpDir),
    appendHistory: (record) => appendHistoryFile(files.history, record),
    readHistory: () => readHistoryFile(files.history),
    hasObject: (sha256, size) => stage.hasObject(sha256, size),
    partial: (key) => stage.partial(key),
    receive: (key, body, expect) => stage.receive(label, key, body, expect),
    freeBytes: () => stage.freeBytes(),

    async publish(next, options: { sign?: ManifestSigner; keepGenerations: number }) {
      // The engine read the committed manifest moments ago under the same lock: reuse it, not a third parse.
      const committed = lastRead ?? (await readMirrorManifest(root));
      try {
        await publishJournaled(tree, committed, next, options);
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
