// The publish journal of the stores that publish in place (a folder, a share): retain, place, remove, commit, prune; crash-safe and idempotent.
import { IoError, NotFoundError } from "../core/errors.js";
import { eachLimit } from "../core/each-limit.js";
import { type Manifest, parseManifest, serializeManifest } from "../core/manifest.js";
import type { ManifestSigner } from "../core/store.js";
import { type IndexRanges, type PathContent, pickRanges, planPublish } from "./publish-plan.js";

/**
 * A publish in progress, written before the first file moves so a crash can be rolled forward. The
 * manifest to commit is written beside it as its bytes, not embedded: a manifest of 40,000 files
 * escaped into JSON, once per phase, cost tens of MB of heap per publish.
 */
export interface Journal {
  /** "retain" until every replaced file is safe among the objects; then "place". */
  phase: "retain" | "place";
  /** The manifest's text, in journals written before it moved beside the journal; still rolled forward. */
  manifest?: string;
  signature?: string;
  keepGenerations: number;
  /**
   * Files to place, as index ranges into the manifest's files: a few bytes where a list of 40,000
   * paths and hashes cost 4 MB of JSON, written and held twice at the peak of a full sync.
   */
  placeRanges?: IndexRanges;
  /** Files to place, listed, in journals written before placeRanges; still rolled forward. */
  place?: PathContent[];
  remove: string[];
  /** Paths whose current content must be kept as an object before it is replaced or removed. */
  retain: PathContent[];
}

/**
 * What a journaled publish needs from the place it publishes into: payload files by path, content
 * objects by SHA-256, and the private metadata files. Every method is idempotent, since a replay
 * repeats whatever a crash cut short; methods throw the store's own errors (IoError, NotFoundError).
 */
export interface JournalTree {
  readonly label: string;
  /** Place operations worth having in flight at once. */
  readonly placeConcurrency: number;
  /** Creates the private folders a publish writes into. */
  prepare(): Promise<void>;
  /** True when object `sha256` exists (verified content the store may place). */
  holdsObject(sha256: string): Promise<boolean>;
  payloadExists(path: string): Promise<boolean>;
  /** Keeps the current content of `path` as object `sha256`, unless that object exists or the file is gone. */
  retain(path: string, sha256: string): Promise<void>;
  /**
   * Puts object `sha256` at `path` so that a reader sees the old file or the whole new one: by rename
   * when `consume` (its last use; the object is gone afterwards), else by a copy or link under a temp name and a rename.
   */
  place(sha256: string, path: string, consume: boolean): Promise<void>;
  /** Forgets an object that was consumed. */
  forget(sha256: string): Promise<void>;
  /** Removes a payload file (missing is fine) and the folders it leaves empty. */
  remove(path: string): Promise<void>;
  /** Makes what was written durable: the staged objects before any is placed, the placed tree before the manifest commits. */
  makeDurable(what: "objects" | "tree"): Promise<void>;
  /** The journal's text, or undefined when no publish is pending. */
  readJournal(): Promise<string | undefined>;
  /** Replaces the journal atomically. */
  writeJournal(text: string): Promise<void>;
  readJournalManifest(): Promise<Buffer>;
  writeJournalManifest(bytes: Buffer): Promise<void>;
  /** Removes the journal, then the manifest beside it (so a journal never lacks its manifest). */
  endJournal(): Promise<void>;
  /** Commits the public metadata: SHA256SUMS and the signature (or removes a stale one), then the manifest last. */
  commit(manifest: Manifest, bytes: Buffer, signature: string | undefined): Promise<void>;
  freeBytes(): Promise<number>;
  /** Versions of the retained previous manifests, newest first. */
  generations(): Promise<number[]>;
  writeGeneration(version: number, bytes: Buffer): Promise<void>;
  removeGeneration(version: number): Promise<void>;
  /** Adds the SHA-256 of every file retained generation `version` lists. */
  addGenerationHashes(version: number, into: Set<string>): Promise<void>;
  /** Removes every object `keep` does not name. */
  pruneObjects(keep: (sha256: string) => boolean): Promise<void>;
}

const METADATA_MARGIN = 1 << 20;

/** Carries out a journal that commits `manifest` (with these bytes). */
async function runJournal(tree: JournalTree, journal: Journal, manifest: Manifest, manifestBytes: Buffer): Promise<void> {
  await tree.prepare();
  if (journal.phase === "retain") {
    for (const r of journal.retain) await tree.retain(r.path, r.sha256);
    await tree.makeDurable("objects");
    // A replay must not retain once placing has begun (it would keep new content under an old hash).
    // With nothing to retain there is no such hazard, and no second copy of a long journal.
    if (journal.retain.length > 0) {
      journal.phase = "place";
      await tree.writeJournal(JSON.stringify(journal));
    }
  }
  // One lane per content: uses of the same object run in order, the last one consuming it, so a
  // missing object on a replay means every use of it was already placed.
  const bySha = new Map<string, string[]>();
  for (const p of journal.place ?? pickRanges(manifest.files, journal.placeRanges ?? [])) {
    const paths = bySha.get(p.sha256);
    if (paths) paths.push(p.path);
    else bySha.set(p.sha256, [p.path]);
  }
  await eachLimit([...bySha.keys()], tree.placeConcurrency, async (sha256) => {
    const paths = bySha.get(sha256) as string[];
    if (!(await tree.holdsObject(sha256))) {
      for (const path of paths) {
        if (!(await tree.payloadExists(path))) throw new NotFoundError(`${tree.label}: nothing staged for ${path} (${sha256})`);
      }
      return;
    }
    for (const [i, path] of paths.entries()) await tree.place(sha256, path, i === paths.length - 1);
    await tree.forget(sha256);
  });
  for (const path of journal.remove) await tree.remove(path);
  // Renames must be durable before the manifest that lists their results is.
  await tree.makeDurable("tree");
  await tree.commit(manifest, manifestBytes, journal.signature);
  await tree.endJournal();
  await pruneGenerations(tree, manifest, journal.keepGenerations);
}

/** The manifest a journal commits: embedded in older journals, beside the journal since. */
async function journalManifest(tree: JournalTree, journal: Journal): Promise<Buffer> {
  return journal.manifest === undefined ? await tree.readJournalManifest() : Buffer.from(journal.manifest, "utf8");
}

/** Keeps the newest `keep` previous manifests and the objects they need that the tree does not hold. */
async function pruneGenerations(tree: JournalTree, current: Manifest, keep: number): Promise<void> {
  const versions = (await tree.generations()).filter((v) => v !== current.version);
  const kept = versions.slice(0, keep);
  for (const v of versions.slice(keep)) await tree.removeGeneration(v);
  const needed = new Set<string>();
  for (const v of kept) await tree.addGenerationHashes(v, needed);
  for (const f of current.files) needed.delete(f.sha256);
  await tree.pruneObjects((name) => needed.has(name));
}

/**
 * Finishes a publish a crash interrupted. Returns its version, or undefined when none was pending.
 * Throws what the tree throws, and ManifestError for a damaged journal.
 */
export async function recoverJournal(tree: JournalTree): Promise<number | undefined> {
  const text = await tree.readJournal();
  if (text === undefined) return undefined;
  const journal = JSON.parse(text) as Journal;
  const bytes = await journalManifest(tree, journal);
  const manifest = parseManifest(bytes, `${tree.label}: the publish journal's manifest`);
  await runJournal(tree, journal, manifest, bytes);
  return manifest.version;
}

/**
 * Publishes `next` over `committed` (the store's committed manifest, when it has one). Every file of
 * `next` must be an object or a committed file under some path. Throws NotFoundError when content is
 * missing and IoError when the tree lacks room, in both cases before anything changed; after the
 * journal is written, a failure leaves a publish the next recoverJournal finishes.
 */
export async function publishJournaled(
  tree: JournalTree,
  committed: { manifest: Manifest; bytes: Buffer } | undefined,
  next: Manifest,
  options: { sign?: ManifestSigner; keepGenerations: number },
): Promise<void> {
  const current = committed?.manifest.files ?? [];
  const { place, remove, retain } = planPublish(current, next.files);
  // Content the new state needs that is not staged may still sit in the tree under another name.
  let currentBySha: Map<string, string> | undefined;
  for (const p of pickRanges(next.files, place)) {
    if (await tree.holdsObject(p.sha256)) continue;
    currentBySha ??= new Map(current.map((f) => [f.sha256, f.path]));
    const from = currentBySha.get(p.sha256);
    if (from === undefined) throw new NotFoundError(`${tree.label}: nothing staged for ${p.path} (${p.sha256})`);
    retain.unshift({ path: from, sha256: p.sha256 });
  }
  const bytes = serializeManifest(next);
  // The journal, the retained manifest, SHA256SUMS and the manifest itself all need room; running out
  // half-way through placing files would leave a publish that only more space can finish.
  const free = await tree.freeBytes();
  const needs = 4 * bytes.length + METADATA_MARGIN;
  if (free < needs) {
    throw new IoError(`${tree.label}: only ${free} bytes free, not enough to publish version ${next.version} safely (needs about ${needs}); nothing was changed`);
  }
  const journal: Journal = {
    phase: "retain",
    keepGenerations: options.keepGenerations,
    placeRanges: place,
    remove,
    retain,
    ...(options.sign && { signature: options.sign(bytes) }),
  };
  await tree.prepare();
  if (committed) await tree.writeGeneration(committed.manifest.version, committed.bytes);
  // The manifest first: a journal is never without the manifest it commits.
  await tree.writeJournalManifest(bytes);
  await tree.writeJournal(JSON.stringify(journal));
  await runJournal(tree, journal, next, bytes);
}
