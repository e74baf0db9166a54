// Folder store: a mirror on a local (or mounted) file system, with content-addressed staging, a publish journal and retained generations.
import { randomBytes } from "node:crypto";
import { copyFile, constants, link, mkdir, readFile, rename, rm, rmdir, stat, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fsError, IoError, NotFoundError } from "../core/errors.js";
import { type Manifest, parseManifest, serializeManifest } from "../core/manifest.js";
import type { Committed, ManifestSigner, Store } from "../core/store.js";
import { eachLimit } from "../core/each-limit.js";
import { writeFileAtomic } from "../fs/atomic-write.js";
import { linkOrCopy } from "../fs/link-or-copy.js";
import { mirrorLayout } from "../mirror/layout.js";
import { commitMirrorMetadata, readMirrorManifest, readMirrorSignature } from "../mirror/metadata.js";
import { addRetainedHashes, retainedLayout, retainedVersions } from "../mirror/retained.js";
import { acquireLock } from "./folder-lock.js";
import { createStaging, isMissing } from "./staging.js";
import { readStateFile, writeStateFile } from "./state-file.js";
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

// Renames and links in flight while placing: enough to keep libuv's four threads busy.
const PLACE_CONCURRENCY = 8;
const METADATA_MARGIN = 1 << 20;

export function createFolderStore(root: string): Store {
  const layout = mirrorLayout(root);
  const files = {
    journal: layout.journal,
    journalManifest: join(layout.privateDir, "journal.manifest.json"),
    state: join(layout.privateDir, "state.json"),
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

  /** The manifest a journal commits: embedded in older journals, beside the journal since. */
  async function journalManifest(journal: Journal): Promise<Buffer> {
    return journal.manifest === undefined ? await readFile(files.journalManifest) : Buffer.from(journal.manifest, "utf8");
  }

  /**
   * Carries out a journal; `parsed` and `bytes` are the manifest's parsed form and bytes when the
   * caller already has them (a replay reads them).
   */
  async function runJournal(journal: Journal, parsed?: Manifest, bytes?: Buffer): Promise<void> {
    await stage.ensureDirs();
    if (journal.phase === "retain") {
      for (const r of journal.retain) await retain(r.path, r.sha256);
      // Staged objects were written without fsync: they must be durable before any is placed.
      await stage.makeDurable([layout.objectsDir]);
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
      if (!(await stage.holds(sha256)) && !(await exists(objectPath(sha256)))) {
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
      await stage.forget(sha256);
    });
    for (const path of journal.remove) {
      await unlink(payloadPath(path)).catch((err: unknown) => {
        if (!isMissing(err)) throw err;
      });
      touched.add(dirname(payloadPath(path)));
      await pruneEmptyDirs(path);
    }
    // Renames must be durable before the manifest that lists their results is.
    await stage.makeDurable(touched);
    const manifestBytes = bytes ?? (await journalManifest(journal));
    const manifest = parsed ?? parseManifest(manifestBytes, files.journal);
    await commitMirrorMetadata(root, manifest, journal.signature === undefined ? undefined : () => journal.signature as string, { bytes: manifestBytes });
    await unlink(files.journal);
    // Only once the journal is gone, so a journal never lacks its manifest.
    await rm(files.journalManifest, { force: true });
    madeDirs.clear();
    await pruneGenerations(manifest, journal.keepGenerations);
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
    await stage.prune((name) => needed.has(name));
  }

  return {
    label,

    lock: (command) => acquireLock(files.lock, command, label),

    async recover() {
      await stage.clearTmp();
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

    readState: () => readStateFile(files.state),
    writeState: (state) => writeStateFile(files.state, state, layout.tmpDir),
    hasObject: (sha256, size) => stage.hasObject(sha256, size),
    partial: (key) => stage.partial(key),
    receive: (key, body, expect) => stage.receive(label, key, body, expect),
    freeBytes: () => stage.freeBytes(),

    async publish(next, options: { sign?: ManifestSigner; keepGenerations: number }) {
      // The engine read the committed manifest moments ago under the same lock: reuse it, not a third parse.
      const committed = lastRead ?? (await readMirrorManifest(root));
      const current = committed?.manifest.files ?? [];
      const { place, remove, retain: retainList } = planPublish(current, next.files);
      // Content the new state needs that is not staged may still sit in the tree under another name.
      let currentBySha: Map<string, string> | undefined;
      for (const p of place) {
        if (await stage.holds(p.sha256)) continue;
        currentBySha ??= new Map(current.map((f) => [f.sha256, f.path]));
        const from = currentBySha.get(p.sha256);
        if (from === undefined) throw new NotFoundError(`${label}: nothing staged for ${p.path} (${p.sha256})`);
        retainList.unshift({ path: from, sha256: p.sha256 });
      }
      const bytes = serializeManifest(next);
      // The journal, the retained manifest, SHA256SUMS and the manifest itself all need room; running
      // out half-way through placing files would leave a publish that only more space can finish.
      const free = await stage.freeBytes();
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
          await mkdir(layout.manifestsDir, { recursive: true });
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
