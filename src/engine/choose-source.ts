// Probing every source for a manifest and choosing the newest acceptable one (trust, expiry, rollback, hold).
import { ManifestError, RefusedPlanError, SignatureError, SourceError, UpdateMirrorError } from "../core/errors.js";
import type { Source, UpstreamManifest } from "../core/source.js";
import type { MirrorState } from "../core/store.js";
import { keyIdHex, type PublicKey, verifyDetached } from "../crypto/minisign.js";
import { type RetryPolicy, withRetry } from "../wrap/retry.js";
import type { Emit } from "./events.js";

export interface TrustPolicy {
  keys: PublicKey[];
  allowRollback: boolean;
  allowExpired: boolean;
}

export type Choice =
  | { kind: "manifest"; source: Source; upstream: UpstreamManifest; keyId?: string }
  | { kind: "unchanged"; source: Source; version: number }
  | { kind: "listing"; source: Source };

interface Probed {
  source: Source;
  choice?: Choice;
  error?: UpdateMirrorError;
  /** The version this source offers is one a rollback moved away from. */
  held?: number;
}

/** A manifest at or below the version a rollback moved away from: not an error, just nothing to take yet. */
class HeldBack extends RefusedPlanError {
  constructor(
    message: string,
    readonly version: number,
  ) {
    super(message);
  }
}

/** Checks signature, expiry, hold and rollback; returns the verifying key id, or throws why the manifest is refused. */
function accept(source: Source, upstream: UpstreamManifest, trust: TrustPolicy, state: MirrorState, now: Date, applied: number | undefined): string | undefined {
  const { manifest } = upstream;
  let keyId: string | undefined;
  if (trust.keys.length > 0) {
    if (upstream.signature === undefined) throw new SignatureError(`${source.label}: the manifest is not signed, and --trust requires a signature`);
    const failures: string[] = [];
    for (const key of trust.keys) {
      try {
        verifyDetached(upstream.bytes, upstream.signature, key, `${source.label}.update-mirror/manifest.json.minisig`);
        keyId = keyIdHex(key.keyId);
        break;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    if (keyId === undefined) throw new SignatureError(failures.join("; "));
    const highest = Math.max(state.trusted[keyId] ?? 0, applied ?? 0) || undefined;
    if (highest !== undefined && manifest.version < highest && !trust.allowRollback) {
      throw new RefusedPlanError(`${source.label}: manifest version ${manifest.version} is older than version ${highest} already accepted from key ${keyId}: refused as a rollback (--allow-rollback overrides)`);
    }
  }
  if (manifest.expires !== undefined && Date.parse(manifest.expires) <= now.getTime() && !trust.allowExpired) {
    throw new RefusedPlanError(`${source.label}: manifest version ${manifest.version} expired at ${manifest.expires} (--allow-expired overrides)`);
  }
  if (state.heldUpstreamVersion !== undefined && manifest.version <= state.heldUpstreamVersion) {
    throw new HeldBack(`${source.label}: manifest version ${manifest.version} was rolled back from; waiting for a version above ${state.heldUpstreamVersion}`, manifest.version);
  }
  return keyId;
}

export interface ProbeContext {
  sources: readonly Source[];
  state: MirrorState;
  /** Digest of selection and trust: a remembered validator counts only for the same one. */
  fingerprint: string;
  trust: TrustPolicy;
  retry: RetryPolicy;
  now: Date;
  emit: Emit;
  /** Fetch signatures even without trust (a replica carries the upstream's signature over). */
  wantSignature?: boolean;
  /**
   * The upstream version the committed state came from. With trust it is a rollback floor of its own,
   * so the published state itself protects against an older manifest even if the state file was lost.
   */
  appliedUpstreamVersion?: number;
}

/**
 * Probes every source (in parallel, each with retries) and returns the newest acceptable manifest,
 * the earliest source on a tie; a source that has not changed since last run counts with the
 * version it had. Without any manifest, the first source that answered "none" is listed instead.
 * Throws the first source's error, with every source's reason, when none is usable. Signatures are
 * fetched when trust is set or `wantSignature` (a replica carries the upstream's signature over).
 */
export async function chooseSource(probe: ProbeContext): Promise<{ choice: Choice; down: Set<Source> }> {
  const { sources, state, fingerprint, trust, retry, now, emit, wantSignature = false, appliedUpstreamVersion } = probe;
  const down = new Set<Source>();
  const probed: Probed[] = await Promise.all(
    sources.map(async (source): Promise<Probed> => {
      const remembered = state.sources[source.label];
      const until = remembered?.coolDownUntil;
      if (until !== undefined && Date.parse(until) > now.getTime()) {
        emit({ type: "source:probe", source: source.label, result: "cooling-down", reason: `asked us to wait until ${until}` });
        return { source, error: new SourceError(`${source.label}: cooling down until ${until} (the server asked us to wait)`) };
      }
      const validator = remembered?.fingerprint === fingerprint && remembered.version !== undefined ? remembered.validator : undefined;
      try {
        const found = await withRetry(() => source.probeManifest(validator, { signature: wantSignature || trust.keys.length > 0 }), retry);
        if (found.kind === "unchanged") {
          const version = remembered?.version ?? 0;
          emit({ type: "source:probe", source: source.label, result: "unchanged", version });
          return { source, choice: { kind: "unchanged", source, version } };
        }
        if (found.kind === "none") {
          // With trust set, what is taken must be signed: a source that drops its manifest must not get around that.
          if (trust.keys.length > 0) throw new SignatureError(`${source.label}: holds no manifest, and --trust takes only a signed one`);
          emit({ type: "source:probe", source: source.label, result: "none" });
          return { source, choice: { kind: "listing", source } };
        }
        const keyId = accept(source, found.upstream, trust, state, now, appliedUpstreamVersion);
        emit({ type: "source:probe", source: source.label, result: "manifest", version: found.upstream.manifest.version });
        return { source, choice: { kind: "manifest", source, upstream: found.upstream, ...(keyId !== undefined && { keyId }) } };
      } catch (err) {
        if (!(err instanceof UpdateMirrorError)) throw err;
        if (err instanceof SourceError) {
          down.add(source);
          if (err.retryAfterMs !== undefined) {
            state.sources[source.label] = { ...state.sources[source.label], coolDownUntil: new Date(now.getTime() + err.retryAfterMs).toISOString() };
          }
        }
        const refused = err instanceof SignatureError || err instanceof RefusedPlanError || err instanceof ManifestError;
        emit({ type: "source:probe", source: source.label, result: refused ? "refused" : "error", reason: err.message });
        return { source, error: err, ...(err instanceof HeldBack && { held: err.version }) };
      }
    }),
  );

  let best: Choice | undefined;
  let bestVersion = -1;
  for (const p of probed) {
    const c = p.choice;
    if (!c || c.kind === "listing") continue;
    const version = c.kind === "manifest" ? c.upstream.manifest.version : c.version;
    if (version > bestVersion) {
      best = c;
      bestVersion = version;
    }
  }
  best ??= probed.find((p) => p.choice?.kind === "listing")?.choice;
  // Only versions a rollback moved away from: the rolled-back state stays, as if nothing had changed.
  const held = best ? undefined : probed.find((p) => p.held !== undefined);
  if (held?.held !== undefined) {
    bestVersion = held.held;
    best = { kind: "unchanged", source: held.source, version: held.held };
  }
  if (best) {
    for (const p of probed) {
      const c = p.choice;
      if (!c || c.kind === "listing") continue;
      const version = c.kind === "manifest" ? c.upstream.manifest.version : c.version;
      if (version < bestVersion) emit({ type: "source:passed-over", source: p.source.label, reason: `offers version ${version}, older than version ${bestVersion} at ${best.source.label}` });
    }
    emit({ type: "source:chosen", source: best.source.label, ...(bestVersion >= 0 && { version: bestVersion }) });
    return { choice: best, down };
  }
  const first = probed.find((p) => p.error)?.error as UpdateMirrorError;
  const reasons = probed.map((p) => `  ${p.source.label}: ${p.error?.message ?? "no answer"}`).join("\n");
  const message = `no usable source:\n${reasons}`;
  if (first instanceof SignatureError) throw new SignatureError(message);
  if (first instanceof RefusedPlanError) throw new RefusedPlanError(message);
  if (first instanceof ManifestError) throw new ManifestError(message);
  throw new SourceError(message);
}
