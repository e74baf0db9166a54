// The rollback job: republish a retained previous generation as a new version, and hold back the upstream version rolled away from.
import { NotFoundError, RefusedPlanError, UsageError } from "../core/errors.js";
import { formatTimestamp, type Manifest } from "../core/manifest.js";
import type { ManifestSigner, Store } from "../core/store.js";
import { GENERATOR } from "../version.js";
import type { Emit, RunSummary } from "./events.js";

export interface RollbackOptions {
  store: Store;
  /** The generation to return to; default the newest retained one. */
  toVersion?: number;
  sign?: ManifestSigner;
  expiresInMs?: number;
  keepGenerations: number;
  now?: () => Date;
  emit: Emit;
}

/**
 * Republishes generation `toVersion` (default: the previous one) under a new, higher version, so
 * clients that refuse older versions still take it, and records the upstream version rolled away from
 * so the next sync does not simply bring it back. Throws NotFoundError (no mirror, or the generation is
 * not retained), UsageError (the mirror is signed and no key was given), LockedError, IoError.
 */
export async function runRollback(options: RollbackOptions): Promise<RunSummary> {
  const { store, emit } = options;
  const started = performance.now();
  const now = options.now ?? (() => new Date());
  emit({ type: "run:start", dest: store.label, sources: [], dryRun: false });
  const release = await store.lock("rollback");
  try {
    const recovered = await store.recover();
    if (recovered !== undefined) emit({ type: "run:recovered", version: recovered });
    const committed = await store.readCommitted();
    if (!committed) throw new NotFoundError(`${store.label}: no committed manifest, nothing to roll back`);
    const versions = await store.generations();
    const toVersion = options.toVersion ?? versions.find((v) => v < committed.manifest.version) ?? versions[0];
    if (toVersion === undefined) throw new RefusedPlanError(`${store.label}: no previous generation is retained (see --keep-generations)`);
    if (!versions.includes(toVersion)) throw new NotFoundError(`${store.label}: generation ${toVersion} is not retained; retained: ${versions.join(", ") || "none"}`);
    if (committed.signed && !options.sign) throw new UsageError(`${store.label} is signed: give --sign-key so the rolled-back manifest is signed too`);
    const generation = await store.readGeneration(toVersion);
    const state = await store.readState();
    const version = Math.max(state.highestVersion, committed.manifest.version) + 1;
    const created = now();
    const next: Manifest = { ...generation, version, created: formatTimestamp(created), origin: { ...generation.origin, generator: GENERATOR } };
    delete next.expires;
    if (options.expiresInMs !== undefined) next.expires = formatTimestamp(new Date(created.getTime() + options.expiresInMs));
    emit({ type: "publish:start", version });
    // The hold is saved before the commit point, so a crash right after it cannot bring back the version rolled away from.
    const heldFrom = committed.manifest.origin.upstreamVersion;
    if (heldFrom !== undefined) state.heldUpstreamVersion = Math.max(state.heldUpstreamVersion ?? 0, heldFrom);
    // Forget conditional validators so the next sync looks at the upstream afresh.
    for (const source of Object.values(state.sources)) {
      delete source.validator;
      delete source.version;
    }
    state.highestVersion = version;
    await store.writeState(state);
    await store.publish(next, { keepGenerations: options.keepGenerations, ...(options.sign && { sign: options.sign }) });
    const before = new Map(committed.manifest.files.map((f) => [f.path, f.sha256]));
    const after = new Set(next.files.map((f) => f.path));
    const summary: RunSummary = {
      result: "updated",
      version,
      previousVersion: committed.manifest.version,
      previousUpstreamVersion: committed.manifest.origin.upstreamVersion ?? null,
      source: `generation ${toVersion}`,
      upstreamVersion: next.origin.upstreamVersion ?? null,
      added: next.files.filter((f) => !before.has(f.path)).length,
      updated: next.files.filter((f) => before.has(f.path) && before.get(f.path) !== f.sha256).length,
      removed: [...before.keys()].filter((p) => !after.has(p)).length,
      failed: 0,
      bytes: 0,
      elapsedMs: Math.round(performance.now() - started),
    };
    emit({ type: "run:done", summary });
    return summary;
  } finally {
    await release();
  }
}
