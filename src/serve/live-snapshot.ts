// The snapshot in force: watches manifest.json (fs.watch plus a cheap periodic stat) and swaps in a successor only once it is fully loaded.
import { type FSWatcher, watch } from "node:fs";
import { ManifestError } from "../core/errors.js";
import { MANIFEST_NAME, mirrorLayout } from "../mirror/layout.js";
import { type LoadOptions, loadSnapshot, type RetainedCache, type Snapshot, sameStamp, statManifest } from "./snapshot.js";

/** Where the server reports what happens to its snapshot (pino's Logger fits). */
export interface ServeLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface LiveSnapshotOptions {
  /** Interval of the stat that backs up fs.watch (which can miss events on network file systems); default 1000 ms. */
  pollMs?: number;
  log?: ServeLog;
  load?: Omit<LoadOptions, "retainedCache">;
}

/** Whether the committed manifest could be read the last time it was checked. */
export interface SnapshotHealth {
  ok: boolean;
  /** Why not, when `ok` is false (the old snapshot is still served meanwhile). */
  error?: string;
}

export interface LiveSnapshot {
  /** The snapshot in force. It is replaced as a whole and never changed after it is published, so a request can hold on to one. */
  current(): Snapshot;
  /**
   * Stats manifest.json and, if it changed, loads the new state completely and swaps it in. Concurrent
   * calls share one check. Never throws: a failed load keeps the old snapshot and shows in health().
   */
  refresh(): Promise<Snapshot>;
  health(): SnapshotHealth;
  /** Snapshots swapped in since start, and loads that failed. */
  counts(): { reloads: number; failures: number };
  /** Stops watching. Idempotent. */
  close(): void;
}

const DEBOUNCE_MS = 10;
const SILENT: ServeLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

function describe(snapshot: Snapshot, ms: number): object {
  return { version: snapshot.version, files: snapshot.files.size, bytes: snapshot.totalBytes, unverified: snapshot.unverifiedFiles, retained: snapshot.retained, ms: Math.round(ms) };
}

/**
 * Loads the mirror at `root` (a real path) and keeps the snapshot current. Throws what loadSnapshot
 * throws when the first load fails (NotFoundError when the folder is not a mirror).
 */
export async function openLiveSnapshot(root: string, options: LiveSnapshotOptions = {}): Promise<LiveSnapshot> {
  const log = options.log ?? SILENT;
  const retainedCache: RetainedCache = new Map();
  const load = () => loadSnapshot(root, { ...options.load, retainedCache });
  const started = performance.now();
  let snapshot = await load();
  for (const warning of snapshot.warnings) log.warn({ event: "serve:snapshot-warning", version: snapshot.version }, warning);
  log.info({ event: "serve:snapshot", ...describe(snapshot, performance.now() - started) }, "serving manifest");

  let health: SnapshotHealth = { ok: true };
  let failedStamp: Awaited<ReturnType<typeof statManifest>>;
  let checking: Promise<Snapshot> | undefined;
  let reloads = 0;
  let failures = 0;
  let closed = false;

  async function check(): Promise<Snapshot> {
    let stamp: Awaited<ReturnType<typeof statManifest>>;
    try {
      stamp = await statManifest(root);
    } catch (err) {
      health = { ok: false, error: (err as Error).message };
      return snapshot;
    }
    if (stamp === undefined) {
      health = { ok: false, error: `no committed manifest at ${mirrorLayout(root).manifest}` };
      return snapshot;
    }
    if (sameStamp(stamp, snapshot.stamp)) {
      health = { ok: true };
      return snapshot;
    }
    // An invalid manifest is tried again only once it changes.
    if (sameStamp(stamp, failedStamp)) return snapshot;
    const begun = performance.now();
    try {
      const next = await load();
      if (closed) return snapshot;
      snapshot = next;
      reloads += 1;
      failedStamp = undefined;
      health = { ok: true };
      for (const warning of next.warnings) log.warn({ event: "serve:snapshot-warning", version: next.version }, warning);
      log.info({ event: "serve:snapshot", ...describe(next, performance.now() - begun) }, "serving manifest");
      return next;
    } catch (err) {
      failures += 1;
      // An invalid manifest stays invalid; a passing I/O failure is tried again at the next poll.
      if (err instanceof ManifestError) failedStamp = stamp;
      health = { ok: false, error: (err as Error).message };
      log.error({ event: "serve:snapshot-failed", version: snapshot.version, err: (err as Error).message }, "could not load the new manifest; still serving the previous one");
      return snapshot;
    }
  }

  let again = false;
  function refresh(): Promise<Snapshot> {
    if (closed) return Promise.resolve(snapshot);
    if (checking !== undefined) {
      // A change may have landed after the running check's stat: look once more when it is done.
      again = true;
      return checking;
    }
    checking = check().finally(() => {
      checking = undefined;
      if (again) {
        again = false;
        void refresh();
      }
    });
    return checking;
  }

  let timer: NodeJS.Timeout | undefined;
  function schedule(): void {
    if (timer !== undefined || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      void refresh();
    }, DEBOUNCE_MS);
  }

  // Watch the folder, not the file: the manifest is replaced by rename, which a watch on the old inode would not see.
  let watcher: FSWatcher | undefined;
  function arm(): void {
    if (watcher !== undefined || closed) return;
    try {
      watcher = watch(mirrorLayout(root).metadataDir, { persistent: false }, (_event, name) => {
        if (name === null || name === MANIFEST_NAME) schedule();
      });
      watcher.on("error", () => {
        watcher?.close();
        watcher = undefined;
      });
    } catch {
      watcher = undefined;
    }
  }
  arm();
  const poll = setInterval(() => {
    arm();
    void refresh();
  }, options.pollMs ?? 1000);
  poll.unref();

  return {
    current: () => snapshot,
    refresh,
    health: () => health,
    counts: () => ({ reloads, failures }),
    close() {
      closed = true;
      clearInterval(poll);
      if (timer !== undefined) clearTimeout(timer);
      watcher?.close();
      watcher = undefined;
    },
  };
}
