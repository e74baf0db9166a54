// The /.update-mirror/healthz verdict: healthy while the committed manifest is readable, unexpired and younger than the configured age.
import type { SnapshotHealth } from "./live-snapshot.js";
import type { Snapshot } from "./snapshot.js";

export interface HealthReport {
  status: 200 | 503;
  /** The short JSON body: `{"status":"ok"|"unhealthy","version":N,"ageSeconds":S,"reason"?:"..."}`. */
  body: string;
}

/** Judges health from the snapshot in force and the last check of the manifest on disk; `maxAgeMs` undefined means no age limit. */
export function healthOf(snapshot: Snapshot, check: SnapshotHealth, maxAgeMs: number | undefined, nowMs: number): HealthReport {
  const ageSeconds = Math.max(0, Math.floor((nowMs - snapshot.createdMs) / 1000));
  let reason: string | undefined;
  if (!check.ok) reason = check.error ?? "the committed manifest cannot be read";
  else if (snapshot.expiresMs !== undefined && snapshot.expiresMs <= nowMs) reason = `the manifest expired at ${new Date(snapshot.expiresMs).toISOString()}`;
  else if (maxAgeMs !== undefined && nowMs - snapshot.createdMs > maxAgeMs) reason = `the manifest is ${ageSeconds} s old, more than the allowed ${Math.floor(maxAgeMs / 1000)} s`;
  const body = { status: reason === undefined ? "ok" : "unhealthy", version: snapshot.version, ageSeconds, ...(reason !== undefined && { reason }) };
  return { status: reason === undefined ? 200 : 503, body: `${JSON.stringify(body)}\n` };
}
