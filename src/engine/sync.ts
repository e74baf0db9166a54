// The sync job: choose a source, plan, fetch through a queue, verify, publish, commit — the one engine every verb reuses.
import { createHash } from "node:crypto";
import PQueue from "p-queue";
import { IntegrityError, IoError, NotFoundError, RefusedPlanError, SourceError, StoppedError, UpdateMirrorError } from "../core/errors.js";
import { formatTimestamp, MANIFEST_FORMAT, type Manifest, type ManifestFile, sortFiles, TAG_KEYS } from "../core/manifest.js";
import type { Source, UpstreamManifest } from "../core/source.js";
import type { Committed, ManifestSigner, MirrorState, Store } from "../core/store.js";
import { type RunNaming, runRecord } from "./run-record.js";
import { createTagger, type TagRule } from "../mirror/tags.js";
import { GENERATOR } from "../version.js";
import type { RetryPolicy } from "../wrap/retry.js";
import { type Choice, chooseSource, type TrustPolicy } from "./choose-source.js";
import type { Emit, RunSummary } from "./events.js";
import { fetchFile } from "./fetch.js";
import { checkDeletions, type MaxDelete, type Plan, planChanges, planSync, type TargetFile } from "./plan.js";
import { createSelector, type Selection } from "./select.js";

export interface SyncOptions {
  /** In priority order; failover goes down the list. */
  sources: readonly Source[];
  store: Store;
  selection: Selection;
  /** Tags for files of sources without a manifest. */
  tagRules: readonly TagRule[];
  trust: TrustPolicy;
  dryRun: boolean;
  sign?: ManifestSigner;
  /** Our manifest's lifetime, when it should expire. */
  expiresInMs?: number;
  concurrency: number;
  retry: RetryPolicy;
  maxDelete: MaxDelete;
  keepGenerations: number;
  /**
   * Carry the chosen upstream manifest over as it is — same version, bytes and signature — instead of
   * publishing a new one of ours (export and import, where the DMZ's signature must survive the trip).
   * Needs a manifest upstream and every file (no selection); a lower version than the committed one
   * is a rollback (refused unless `trust.allowRollback`), an equal one with other content a conflict.
   */
  replicate?: boolean;
  /** Refuse sources without a manifest (pull: an endpoint takes only what a mirror published and, with trust, signed). */
  requireManifest?: boolean;
  /**
   * Called with the files this run must fetch (those the store does not already hold), before any
   * is fetched or anything changes; may throw to stop the run (a delta import checks its base).
   */
  checkPlan?: (missing: readonly TargetFile[], committedVersion: number | undefined) => void | Promise<void>;
  now?: () => Date;
  emit: Emit;
  /**
   * How the run is named in the store's history (`history`, `status`): the verb and, under `run JOB`,
   * the job. Default `{ command: "sync" }`; false records nothing (export records in the source mirror).
   */
  record?: RunNaming | false;
  /** When it aborts, no new file is started; the run ends with StoppedError once the files under way are done. */
  signal?: AbortSignal;
}

/** Throws StoppedError when the run was asked to stop; called between steps, never mid-publish. */
function checkStopped(options: SyncOptions, what: string): void {
  if (options.signal?.aborted) throw new StoppedError(`stopped (${String(options.signal.reason ?? "asked to")}) ${what}; nothing was published or deleted`);
}

function namingOf(options: SyncOptions): RunNaming | undefined {
  return options.record === false ? undefined : (options.record ?? { command: "sync" });
}

/**
 * A digest of everything that decides what is accepted and selected, so a changed selection or trust
 * setting never reuses a conditional "unchanged" from a run that decided differently.
 */
function fingerprintOf(options: SyncOptions): string {
  const trust = options.trust.keys.map((k) => k.keyId.toString("hex")).sort();
  return createHash("sha256").update(JSON.stringify([options.selection, options.tagRules, trust])).digest("hex").slice(0, 16);
}

async function targetOf(choice: Choice, options: SyncOptions, listedHints: Record<string, { size: number; mtimeMs?: number; sha256: string }>): Promise<TargetFile[]> {
  const select = createSelector(options.selection);
  if (choice.kind === "manifest") return choice.upstream.manifest.files.filter(select);
  const tagger = createTagger(options.tagRules);
  const entries = await choice.source.list();
  return entries
    .map((e): TargetFile => {
      const hint = listedHints[e.path];
      const known = hint && hint.size === e.size && e.mtimeMs !== undefined && hint.mtimeMs === e.mtimeMs ? hint.sha256 : undefined;
      const tags = tagger(e.path);
      return { path: e.path, size: e.size, ...(e.mtimeMs !== undefined && { mtimeMs: e.mtimeMs }), ...(known !== undefined && { sha256: known }), ...(tags && { tags }) };
    })
    .filter(select);
}

/** The upstream must carry a manifest: a replica copies it, and pull takes nothing else. */
function checkHasManifest(choice: Choice, what: string): void {
  if (choice.kind === "listing") {
    throw new NotFoundError(`${choice.source.label}: holds no update-mirror manifest (.update-mirror/manifest.json), so it is not ${what}`);
  }
}

/** In replica mode: the upstream must carry a manifest, and its version may not go back or fork. */
function checkReplica(choice: Choice, committed: Committed | undefined, allowRollback: boolean): void {
  checkHasManifest(choice, "an exported mirror");
  if (choice.kind !== "manifest" || !committed) return;
  const { manifest, bytes } = choice.upstream;
  const have = committed.manifest.version;
  if (manifest.version === have && !bytes.equals(committed.bytes)) {
    throw new RefusedPlanError(`${choice.source.label}: holds version ${manifest.version} with other content than the version ${have} here: they come from different mirrors; nothing was changed`);
  }
  if (manifest.version < have && !allowRollback) {
    throw new RefusedPlanError(`${choice.source.label}: holds version ${manifest.version}, older than version ${have} here: refused as a rollback (--allow-rollback overrides); nothing was changed`);
  }
}

/** Our next manifest: the next version of this mirror, listing `files`. */
function newManifest(options: SyncOptions, run: RunContext, upstream: string, upstreamVersion: number | null, files: ManifestFile[]): Manifest {
  const created = run.now();
  const next: Manifest = {
    format: MANIFEST_FORMAT,
    version: Math.max(run.state.highestVersion, run.committed?.manifest.version ?? 0) + 1,
    created: formatTimestamp(created),
    origin: { generator: GENERATOR, upstream, ...(upstreamVersion !== null && { upstreamVersion }) },
    files,
  };
  if (options.expiresInMs !== undefined) next.expires = formatTimestamp(new Date(created.getTime() + options.expiresInMs));
  return next;
}

/** A replica publishes the upstream manifest as it is, with the upstream's signature (if any). */
function replicaOf(upstream: UpstreamManifest): { next: Manifest; sign?: ManifestSigner } {
  const { signature } = upstream;
  return { next: upstream.manifest, ...(signature !== undefined && { sign: () => signature }) };
}

/** In a partial run: the previous entries of updates that failed, and every file the plan would remove. */
function carriedEntries(plan: Plan, current: readonly ManifestFile[], failed: ReadonlySet<string>): ManifestFile[] {
  const currentByPath = new Map(current.map((f) => [f.path, f]));
  return [...plan.update.filter((f) => failed.has(f.path)).map((f) => currentByPath.get(f.path) as ManifestFile), ...plan.remove];
}

function sameFile(a: ManifestFile, b: ManifestFile): boolean {
  return a.path === b.path && a.size === b.size && a.sha256 === b.sha256 && TAG_KEYS.every((k) => a.tags?.[k] === b.tags?.[k]);
}

function sameFiles(a: readonly ManifestFile[], b: readonly ManifestFile[]): boolean {
  return a.length === b.length && a.every((f, i) => sameFile(f, b[i] as ManifestFile));
}

/**
 * Runs one sync of `options.store` from `options.sources`. From a manifest upstream it publishes the
 * complete new state or nothing: any file that no source could deliver intact aborts the publish
 * (staged files are kept, so the next run resumes). From a source without a manifest, a run where
 * some files failed publishes the rest and deletes nothing (result "partial"). Throws LockedError, SourceError (no source usable, or files missing),
 * IntegrityError (every source served wrong bytes), SignatureError, RefusedPlanError, IoError.
 */
export async function runSync(options: SyncOptions): Promise<RunSummary> {
  const now = options.now ?? (() => new Date());
  const started = performance.now();
  const { store, emit } = options;
  emit({ type: "run:start", dest: store.label, sources: options.sources.map((s) => s.label), dryRun: options.dryRun });
  const release = options.dryRun ? undefined : await store.lock("sync");
  try {
    if (!options.dryRun) {
      const recovered = await store.recover();
      if (recovered !== undefined) emit({ type: "run:recovered", version: recovered });
    }
    const committed = await store.readCommitted();
    const state = await store.readState();
    if (committed?.drifted?.length) {
      emit({ type: "run:drift", paths: committed.drifted });
      // An upstream "unchanged since last time" says nothing about files changed here since.
      for (const source of Object.values(state.sources)) delete source.validator;
    }
    const fingerprint = fingerprintOf(options);
    const startedAt = now().toISOString();
    try {
      for (let restarts = 0; ; restarts++) {
        try {
          return await planFetchPublish(options, { committed, state, fingerprint, now, started, startedAt });
        } catch (err) {
          if (!(err instanceof UpstreamChanged) || restarts >= MAX_RESTARTS) throw err instanceof UpstreamChanged ? err.failure : err;
          emit({ type: "run:restart", reason: err.message });
        }
      }
    } catch (err) {
      // Cool-downs a 429/503 asked for must outlive a failed run, whatever failed; so must the record of the failure.
      if (!options.dryRun) {
        const record = runRecord(namingOf(options), startedAt, now().toISOString(), "failed", undefined, err);
        state.lastRun = record;
        await store.writeState(state).catch(() => undefined);
        if (options.record !== false) await store.appendHistory(record).catch(() => undefined);
      }
      throw err;
    }
  } finally {
    await release?.();
  }
}

interface RunContext {
  committed: Committed | undefined;
  state: MirrorState;
  fingerprint: string;
  now: () => Date;
  started: number;
  startedAt: string;
}

// A manifest upstream that publishes while we fetch from it can fail files of the version we chose;
// the run then starts over from the new version, reusing everything already staged.
const MAX_RESTARTS = 2;
// Upstream manifests remembered for `status`: enough to cover the generations a rollback can return to.
const UPSTREAMS_KEPT = 10;

/** The chosen upstream published a new manifest while files of the old one were failing. */
class UpstreamChanged extends Error {
  constructor(
    message: string,
    readonly failure: UpdateMirrorError,
  ) {
    super(message);
  }
}

/** After failures from a manifest upstream: did it publish another manifest meanwhile? */
async function upstreamChanged(choice: Choice): Promise<string | undefined> {
  if (choice.kind !== "manifest") return undefined;
  const probe = await choice.source.probeManifest(undefined).catch(() => undefined);
  if (probe?.kind !== "manifest" || probe.upstream.bytes.equals(choice.upstream.bytes)) return undefined;
  return `${choice.source.label} published version ${probe.upstream.manifest.version} while version ${choice.upstream.manifest.version} was being fetched`;
}

async function planFetchPublish(options: SyncOptions, run: RunContext): Promise<RunSummary> {
  const { store, emit } = options;
  const { committed, state, fingerprint, now, started, startedAt } = run;
  const current = committed?.manifest.files ?? [];
  // A replica's committed manifest is the upstream's own; otherwise ours names the upstream version it holds.
  const applied = options.replicate ? committed?.manifest.version : committed?.manifest.origin.upstreamVersion;
  const { choice, down } = await chooseSource({
    sources: options.sources,
    state,
    fingerprint,
    trust: options.trust,
    retry: options.retry,
    now: now(),
    emit,
    wantSignature: options.replicate === true,
    ...(applied !== undefined && { appliedUpstreamVersion: applied }),
  });
  checkStopped(options, "after probing the sources");
  if (options.replicate) checkReplica(choice, committed, options.trust.allowRollback);
  if (options.requireManifest) checkHasManifest(choice, "a mirror");
  const summary: RunSummary = {
    result: "unchanged",
    version: committed?.manifest.version ?? null,
    previousVersion: committed?.manifest.version ?? null,
    previousUpstreamVersion: committed?.manifest.origin.upstreamVersion ?? null,
    source: choice.source.label,
    upstreamVersion: choice.kind === "manifest" ? choice.upstream.manifest.version : choice.kind === "unchanged" ? choice.version : null,
    added: 0,
    updated: 0,
    removed: 0,
    failed: 0,
    bytes: 0,
    elapsedMs: 0,
  };
  const finish = async (result: RunSummary["result"]): Promise<RunSummary> => {
    if (!options.dryRun && result !== "dry-run") {
      const finished = now().toISOString();
      summary.elapsedMs = Math.round(performance.now() - started);
      const record = runRecord(namingOf(options), startedAt, finished, result, summary);
      state.lastRun = record;
      if (result !== "partial") state.lastSuccess = finished;
      await store.writeState(state);
      if (options.record !== false) await store.appendHistory(record);
    }
    summary.result = result;
    summary.elapsedMs = Math.round(performance.now() - started);
    emit({ type: "run:done", summary });
    return summary;
  };
  if (choice.kind === "unchanged") return finish(options.dryRun ? "dry-run" : "unchanged");

  const target = await targetOf(choice, options, state.listed);
  const plan = planSync(current, target);
  if (committed) checkDeletions(plan, current.length, options.maxDelete, choice.source.label);
  emit({ type: "plan:ready", add: plan.add.length, update: plan.update.length, remove: plan.remove.length, keep: plan.keep.length, downloadBytes: plan.downloadBytes, files: planChanges(plan) });
  summary.added = plan.add.length;
  summary.updated = plan.update.length;
  summary.removed = plan.remove.length;
  if (options.dryRun) return finish("dry-run");

  const toFetch = [...plan.add, ...plan.update];
  // Content the mirror already publishes under another path (a file moved or copied upstream) is
  // verified and placed from there by the publish; only what the fetch needs is collected.
  const held = new Set<string>();
  // Only with something committed: a first full sync would build a set of every hash for nothing.
  if (current.length > 0 && toFetch.length > 0) {
    const wanted = new Set<string>();
    for (const f of toFetch) if (f.sha256 !== undefined) wanted.add(f.sha256);
    for (const f of current) if (wanted.has(f.sha256)) held.add(f.sha256);
  }
  const missing: TargetFile[] = [];
  for (const f of toFetch) if (f.sha256 === undefined || !(held.has(f.sha256) || (await store.hasObject(f.sha256, f.size)))) missing.push(f);
  await options.checkPlan?.(missing, committed?.manifest.version);
  const needed = missing.reduce((sum, f) => sum + f.size, 0);
  const free = await store.freeBytes();
  if (needed > free) throw new IoError(`${store.label}: the plan needs ${needed} bytes of space, only ${free} are free; nothing was changed`);

  const ordered = [choice.source, ...options.sources.filter((s) => s !== choice.source)];
  const ctx = { store, sources: ordered, down, failuresInRow: new Map<Source, number>(), retry: options.retry, inFlight: new Map<string, Promise<unknown>>(), state, now, emit, held };
  // Each fetched file's entry in the next manifest (with the target's tags), made as it arrives, so
  // no map of the whole target is needed afterwards.
  const fetched: ManifestFile[] = [];
  let transferred = 0;
  const failures: { path: string; error: UpdateMirrorError }[] = [];
  let bug: unknown;
  // The queue runs `concurrency` workers, each taking the next file when its last is done: a task,
  // promise and listeners per file, 40,000 times over, outlived young-generation GCs and cost tens of
  // MB of peak RSS. A bug stops new files from starting; the ones under way finish before it is thrown.
  const queue = new PQueue({ concurrency: options.concurrency });
  let taken = 0;
  const worker = async (): Promise<void> => {
    while (taken < toFetch.length && bug === undefined && !options.signal?.aborted) {
      const file = toFetch[taken] as TargetFile;
      taken += 1;
      try {
        const got = await fetchFile(file, ctx);
        transferred += got.transferred;
        // A manifest upstream's entry is taken as it is: a copy of 40,000 entries would cost MB of peak memory.
        fetched.push(file.sha256 === got.sha256 && file.mtimeMs === undefined ? (file as ManifestFile) : { path: got.path, size: got.size, sha256: got.sha256, ...(file.tags && { tags: file.tags }) });
      } catch (err) {
        if (err instanceof UpdateMirrorError) failures.push({ path: file.path, error: err });
        else bug ??= err;
      }
    }
  };
  for (let i = 0; i < Math.min(options.concurrency, toFetch.length); i++) void queue.add(worker);
  await queue.onIdle();
  if (bug !== undefined) throw bug;
  checkStopped(options, `after ${fetched.length} of ${toFetch.length} files (they stay staged for the next run)`);
  summary.bytes = transferred;
  const failed = new Set(failures.map((f) => f.path));
  if (failures.length > 0) {
    const errors = failures.map((f) => f.error);
    const local = errors.find((e) => e instanceof IoError);
    // A manifest names one consistent set: it is published whole or not at all. A source without one
    // has no such set, so what verified is published, the rest keeps its previous version, and nothing
    // is deleted (as rclone does); the run ends "partial" and the next run tries the rest again.
    if (local !== undefined || choice.kind !== "listing" || (fetched.length === 0 && committed === undefined)) {
      const message = `${failures.length} of ${toFetch.length} files could not be fetched intact; nothing was published (the ${fetched.length} fetched are staged for the next run). First: ${errors[0]?.message}`;
      if (local) throw new IoError(`${message}; the local disk failed: ${local.message}`);
      const failure = errors.every((e) => e instanceof IntegrityError) ? new IntegrityError(message) : new SourceError(message);
      const changed = await upstreamChanged(choice);
      if (changed !== undefined) throw new UpstreamChanged(changed, failure);
      throw failure;
    }
  }

  // In a partial run: files that failed keep their previous entry, and removed files stay.
  const carried = failed.size === 0 ? [] : carriedEntries(plan, current, failed);
  const files = sortFiles([...plan.keep, ...carried, ...fetched]);
  if (failed.size > 0) {
    summary.added = plan.add.filter((f) => !failed.has(f.path)).length;
    summary.updated = plan.update.filter((f) => !failed.has(f.path)).length;
    summary.removed = 0;
    summary.failed = failed.size;
  }
  if (choice.kind === "listing") {
    delete state.upstreams;
    const byPath = new Map(target.map((t) => [t.path, t]));
    state.listed = {};
    for (const f of files) {
      // A carried entry's bytes are not what the listing shows now: no hint, so it is fetched again.
      if (failed.has(f.path)) continue;
      const t = byPath.get(f.path);
      state.listed[f.path] = { size: f.size, sha256: f.sha256, ...(t?.mtimeMs !== undefined && { mtimeMs: t.mtimeMs }) };
    }
  }
  // The trust floor and the upstream's record may be saved before the commit point; the validator only
  // after it, since a validator saved for a publish that never happened would make the next run "unchanged".
  const rememberAccepted = () => {
    if (choice.kind !== "manifest") return;
    const upstreamVersion = choice.upstream.manifest.version;
    const { created, expires } = choice.upstream.manifest;
    const record = { source: choice.source.label, version: upstreamVersion, created, ...(expires !== undefined && { expires }) };
    state.upstreams = [record, ...(state.upstreams ?? []).filter((u) => u.version !== upstreamVersion)].slice(0, UPSTREAMS_KEPT);
    if (choice.keyId !== undefined) state.trusted[choice.keyId] = Math.max(state.trusted[choice.keyId] ?? 0, upstreamVersion);
  };
  const remember = () => {
    if (choice.kind !== "manifest") return;
    rememberAccepted();
    const upstreamVersion = choice.upstream.manifest.version;
    state.sources[choice.source.label] = { ...state.sources[choice.source.label], version: upstreamVersion, fingerprint, ...(choice.upstream.validator !== undefined && { validator: choice.upstream.validator }) };
  };
  const partial = failed.size > 0;
  // A replica is unchanged only when the manifest itself is: a new version may list the same files.
  const unchanged = options.replicate && choice.kind === "manifest" ? committed?.bytes.equals(choice.upstream.bytes) === true : committed !== undefined && sameFiles(files, committed.manifest.files);
  if (unchanged) {
    remember();
    return finish(partial ? "partial" : "unchanged");
  }

  const { next, sign } = options.replicate && choice.kind === "manifest" ? replicaOf(choice.upstream) : { next: newManifest(options, run, choice.source.label, summary.upstreamVersion, files), sign: options.sign };
  emit({ type: "publish:start", version: next.version });
  // What this publish accepts (the trust floor, the highest version) is saved before the commit point:
  // a crash just after it must not leave a state that would take an older manifest again. A crash
  // before it leaves a floor above what is published, which only makes the next run fetch this again.
  // Versions only grow, even when a replica carries an upstream's numbering.
  state.highestVersion = Math.max(state.highestVersion, next.version);
  rememberAccepted();
  await store.writeState(state);
  await store.publish(next, { keepGenerations: options.keepGenerations, ...(sign && { sign }) });
  remember();
  summary.version = next.version;
  return await finish(partial ? "partial" : "updated");
}
