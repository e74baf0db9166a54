// Endpoint store (pull): each version is a complete set of files, and the endpoint's path is a link switched atomically from one set to the next.
import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, readlink, rename, rm, rmdir, stat, symlink, unlink } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { fsError, IoError, NotFoundError, RefusedPlanError } from "../core/errors.js";
import { type Manifest, serializeManifest } from "../core/manifest.js";
import type { Committed, ManifestSigner, Store } from "../core/store.js";
import { eachLimit } from "../core/each-limit.js";
import { fsyncDir } from "../fs/atomic-write.js";
import { fileDigest } from "../fs/file-digest.js";
import { linkOrCopy } from "../fs/link-or-copy.js";
import { mirrorLayout } from "../mirror/layout.js";
import { commitMirrorMetadata, type LoadedManifest, readMirrorManifest, readMirrorSignature } from "../mirror/metadata.js";
import { acquireLock } from "./folder-lock.js";
import { createStaging, isMissing } from "./staging.js";
import { appendHistoryFile, readHistoryFile } from "./history-file.js";
import { readStateFile, writeStateFile } from "./state-file.js";

const LINK_CONCURRENCY = 8;
const BUILD_PREFIX = ".build-";

/** The private home of an endpoint path: a hidden sibling, on the same file system so renames stay atomic. */
export function endpointHome(target: string): string {
  const abs = resolve(target);
  return join(dirname(abs), `.${basename(abs)}.update-mirror`);
}

/**
 * True when `target` is a link into its endpoint home's sets, i.e. a folder `pull` manages.
 * Throws nothing: anything unreadable is simply not an endpoint.
 */
export async function isEndpoint(target: string): Promise<boolean> {
  try {
    const text = await readlink(resolve(target));
    return resolve(dirname(resolve(target)), text).startsWith(join(endpointHome(target), "sets") + sep);
  } catch {
    return false;
  }
}

async function sha256Of(file: string): Promise<string | undefined> {
  return fileDigest(file).then(
    (d) => d.sha256,
    () => undefined,
  );
}

/**
 * The Store of `pull` at `target` (e.g. /var/lib/av/bases). The path is a symbolic link (a junction
 * on Windows) to `sets/<version>/` in the hidden sibling `.<name>.update-mirror/`, which also holds
 * `private/` (staging, state, lock). A publish builds the new set completely beside the current one —
 * unchanged files as hard links, so a set costs only its changed bytes — makes it durable, and then
 * replaces the link in one rename: whatever instant a pull is interrupted, the path shows the whole
 * previous set or the whole new one. The sets kept besides the current one are its generations.
 * A target that exists as anything but such a link (or an empty folder) is refused, never changed.
 */
export function createEndpointStore(target: string): Store {
  const abs = resolve(target);
  const parent = dirname(abs);
  const home = endpointHome(abs);
  const setsDir = join(home, "sets");
  const privateDir = join(home, "private");
  const tmpDir = join(privateDir, "tmp");
  const files = { state: join(privateDir, "state.json"), lock: join(privateDir, "lock"), history: join(privateDir, "history.jsonl") };
  const label = abs;
  const stage = createStaging({ objects: join(privateDir, "objects"), partial: join(privateDir, "partial"), tmp: tmpDir, fileSystem: home });
  const setDir = (version: number) => join(setsDir, String(version));

  /** The version of the set the link points at; undefined when the target does not exist or is an empty folder. */
  async function current(): Promise<number | undefined> {
    let text: string;
    try {
      text = await readlink(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return undefined;
      if (code === "EINVAL" || code === "UNKNOWN") {
        const entries = await readdir(abs).catch(() => undefined);
        if (entries?.length === 0) return undefined;
        throw new RefusedPlanError(
          `${label} exists and is not a folder pull manages: pull keeps each version as a whole set behind a link at that path, so it never writes into a folder it did not make. Move it away (or empty it) and run again`,
        );
      }
      throw fsError(err, label);
    }
    const pointed = resolve(parent, text);
    const version = relative(setsDir, pointed);
    if (!/^\d+$/.test(version)) throw new RefusedPlanError(`${label} is a link to ${pointed}, not to a set of ${home}: it is not a folder pull manages; remove the link and run again`);
    return Number(version);
  }

  async function setVersions(): Promise<number[]> {
    const names = await readdir(setsDir).catch((err: unknown) => (isMissing(err) ? [] : Promise.reject(fsError(err, setsDir))));
    return names
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .sort((a, b) => b - a);
  }

  /**
   * A set's manifest and which of its files are still what it lists. Something may write into the
   * endpoint's folder; files placed before the manifest was written are older than it, so a later
   * mtime or another size means a change, which a hash then confirms or clears.
   */
  async function readSet(version: number): Promise<{ loaded: LoadedManifest; intact: boolean[] } | undefined> {
    const dir = setDir(version);
    const loaded = await readMirrorManifest(dir);
    if (!loaded) return undefined;
    const manifestTime = (await stat(mirrorLayout(dir).manifest)).mtimeMs;
    const intact: boolean[] = [];
    await eachLimit([...loaded.manifest.files.entries()], LINK_CONCURRENCY, async ([i, f]) => {
      const file = join(dir, ...f.path.split("/"));
      const st = await lstat(file).catch(() => undefined);
      const sameSize = st?.isFile() === true && st.size === f.size;
      intact[i] = sameSize && ((st as { mtimeMs: number }).mtimeMs <= manifestTime || (await sha256Of(file)) === f.sha256);
    });
    return { loaded, intact };
  }

  /** The current set's manifest, less any file that is no longer what it lists (it then counts as missing, so the next publish brings it back). */
  async function readIntact(version: number): Promise<Committed | undefined> {
    const set = await readSet(version);
    if (!set) return undefined;
    const signed = (await readMirrorSignature(setDir(version))) !== undefined;
    if (set.intact.every(Boolean)) return { ...set.loaded, signed };
    const files = set.loaded.manifest.files;
    const manifest: Manifest = { ...set.loaded.manifest, files: files.filter((_, i) => set.intact[i]) };
    return { manifest, bytes: serializeManifest(manifest), signed, drifted: files.filter((_, i) => !set.intact[i]).map((f) => f.path) };
  }

  /** Replaces the link so it points at set `version`: the commit point of a publish. */
  async function switchTo(version: number): Promise<void> {
    const text = relative(parent, setDir(version));
    const tmpLink = join(parent, `.${basename(abs)}.link-${randomBytes(4).toString("hex")}`);
    if (process.platform === "win32") {
      // Junctions cannot be renamed over: the old one goes first (a moment without the path).
      await symlink(setDir(version), tmpLink, "junction");
      await rmdir(abs).catch(() => unlink(abs));
      await rename(tmpLink, abs);
      return;
    }
    await symlink(text, tmpLink);
    try {
      const st = await lstat(abs).catch(() => undefined);
      // An empty folder was checked by current(); it cannot be renamed over, so it goes first.
      if (st?.isDirectory()) await rmdir(abs);
      await rename(tmpLink, abs);
    } catch (err) {
      await unlink(tmpLink).catch(() => undefined);
      throw err;
    }
    await fsyncDir(parent);
  }

  /** Removes half-built sets and links an interrupted publish left. */
  async function clearLeftovers(): Promise<void> {
    const names = await readdir(setsDir).catch(() => [] as string[]);
    for (const n of names) if (n.startsWith(BUILD_PREFIX)) await rm(join(setsDir, n), { recursive: true, force: true });
    const linkPrefix = `.${basename(abs)}.link-`;
    for (const n of await readdir(parent).catch(() => [] as string[])) if (n.startsWith(linkPrefix)) await unlink(join(parent, n)).catch(() => undefined);
  }

  /** Where content with this hash can be linked from: a staged object, or a file of any kept set. */
  async function contentIndex(): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (const v of await setVersions()) {
      const set = await readSet(v).catch(() => undefined);
      for (const [i, f] of (set?.loaded.manifest.files ?? []).entries()) {
        if (set?.intact[i] && !found.has(f.sha256)) found.set(f.sha256, join(setDir(v), ...f.path.split("/")));
      }
    }
    return found;
  }

  /** contentIndex, made once per run on the first hash staging lacks; a publish makes it stale. */
  let kept: Promise<Map<string, string>> | undefined;
  function keptContent(): Promise<Map<string, string>> {
    kept ??= contentIndex().catch((err: unknown) => {
      kept = undefined;
      throw err;
    });
    return kept;
  }

  async function readGeneration(version: number): Promise<Manifest> {
    const loaded = (await setVersions()).includes(version) ? await readMirrorManifest(setDir(version)) : undefined;
    if (!loaded) throw new NotFoundError(`${label}: set ${version} is not kept`);
    return loaded.manifest;
  }

  return {
    label,

    lock: async (command) => {
      await current();
      await mkdir(privateDir, { recursive: true }).catch((err: unknown) => {
        throw fsError(err, privateDir);
      });
      return acquireLock(files.lock, command, label);
    },

    async recover() {
      await Promise.all([clearLeftovers(), stage.clearTmp()]);
      return undefined;
    },

    async readCommitted() {
      const version = await current();
      return version === undefined ? undefined : readIntact(version);
    },

    readState: () => readStateFile(files.state),
    writeState: (state) => writeStateFile(files.state, state, tmpDir),
    appendHistory: (record) => appendHistoryFile(files.history, record),
    readHistory: () => readHistoryFile(files.history),
    // Content of a kept set counts as retained: publish links it from there.
    hasObject: async (sha256, size) => (await stage.hasObject(sha256, size)) || (await keptContent()).has(sha256),
    partial: (key) => stage.partial(key),
    receive: (key, body, expect) => stage.receive(label, key, body, expect),
    freeBytes: () => stage.freeBytes(),

    async publish(next: Manifest, options: { sign?: ManifestSigner; keepGenerations: number }) {
      kept = undefined;
      if (next.version === (await current())) throw new IoError(`${label}: version ${next.version} is the set in use; refusing to rebuild it in place`);
      try {
        await stage.ensureDirs();
        await clearLeftovers();
        const from = await contentIndex();
        const build = join(setsDir, `${BUILD_PREFIX}${next.version}`);
        const made = new Set<string>();
        const sources = new Map<string, string>();
        for (const f of next.files) {
          const source = (await stage.holds(f.sha256)) ? stage.objectPath(f.sha256) : from.get(f.sha256);
          if (source === undefined) throw new NotFoundError(`${label}: nothing staged for ${f.path} (${f.sha256})`);
          sources.set(f.path, source);
        }
        await eachLimit(next.files, LINK_CONCURRENCY, async (f) => {
          const to = join(build, ...f.path.split("/"));
          const dir = dirname(to);
          if (!made.has(dir)) {
            await mkdir(dir, { recursive: true });
            made.add(dir);
          }
          await linkOrCopy(sources.get(f.path) as string, to);
        });
        await mkdir(build, { recursive: true });
        await commitMirrorMetadata(build, next, options.sign, { tmpDir });
        // Every byte of the new set must be durable before the link names it.
        await stage.makeDurable([...made, build]);
        await rm(setDir(next.version), { recursive: true, force: true });
        await rename(build, setDir(next.version));
        await fsyncDir(setsDir);
        await switchTo(next.version);
      } catch (err) {
        throw fsError(err, `${label}: applying version ${next.version}`);
      }
      // The new set holds its content now: objects are only a way there. Older sets beyond the kept ones go.
      await stage.prune(() => false);
      const others = (await setVersions()).filter((v) => v !== next.version);
      for (const v of others.slice(options.keepGenerations)) await rm(setDir(v), { recursive: true, force: true });
    },

    async generations() {
      const now = await current();
      return (await setVersions()).filter((v) => v !== now);
    },

    readGeneration,
  };
}
