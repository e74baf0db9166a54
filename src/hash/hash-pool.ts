// SHA-256 of files on a pool of worker threads, batching small files so 40,000 of them cost few messages.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { fsError, IntegrityError, UsageError } from "../core/errors.js";
import type { HashRequest, HashResponse, HashResult } from "./hash-worker.js";

export interface FileDigest {
  /** Lowercase hex. */
  sha256: string;
  /** Bytes actually read and hashed. */
  size: number;
}

export interface HashPool {
  /**
   * Hashes one file. Safe to call many times without awaiting: calls made in the same tick are
   * batched together, and results come back as soon as their batch is done.
   *
   * Rejects with:
   * - IntegrityError if the number of bytes read differs from `expectedSize` (or, when it is
   *   omitted, from the size the file had when opened): "<path>: size changed while hashing: ...";
   * - NotFoundError if the file does not exist; IoError if it cannot be read, is a directory or is
   *   not a regular file (FIFOs are refused, never waited on);
   * - a plain Error if the worker hashing it died, or the pool was closed before it finished.
   * Symbolic links are followed; callers that must refuse them do so when listing (see walkTree).
   */
  hashFile(absPath: string, expectedSize?: number): Promise<FileDigest>;
  /** Number of worker threads the pool runs. */
  readonly workers: number;
  /** Terminates the workers; every task not yet finished rejects. Idempotent. */
  close(): Promise<void>;
}

export interface HashPoolOptions {
  /** Worker threads; default `os.availableParallelism()` capped at 8. Hashing is CPU-bound, so more than one per core only adds contention. */
  workers?: number;
  /**
   * @internal Test hook: replaces how workers are started (e.g. to inject one that crashes).
   * Receives the normal spawner so a test can fall back to it.
   */
  spawnWorker?: (spawnDefault: () => Worker) => Worker;
}

const MAX_DEFAULT_WORKERS = 8;
// Batches bound the per-message overhead for small files while keeping work spread across workers.
const BATCH_MAX_FILES = 128;
const BATCH_MAX_BYTES = 8 * 1024 * 1024;
// At or above this a file goes alone, so one big file never holds back a batch of small ones.
const LARGE_FILE = 4 * 1024 * 1024;
// Weight for a file of unknown size, so a batch of them is still bounded.
const UNKNOWN_SIZE_WEIGHT = 64 * 1024;
// Two per worker, so the next batch is already waiting in the worker when the current one finishes;
// but a second only while the first is small, so nothing queues behind a big file while another
// worker may go idle (measured: committing 64+192 MiB to one worker and 128 to the other cost ~45%).
const BATCHES_IN_FLIGHT_PER_WORKER = 2;
const PREFETCH_MAX_BYTES = BATCH_MAX_BYTES;
// Workers that die before finishing anything, in a row, mean the worker cannot start at all.
const MAX_CONSECUTIVE_STARTUP_CRASHES = 3;

interface Task {
  path: string;
  expected: number | null;
  resolve: (d: FileDigest) => void;
  reject: (e: Error) => void;
}

interface Batch {
  id: number;
  tasks: Task[];
  bytes: number;
}

interface Slot {
  worker: Worker;
  inFlight: Map<number, Batch>;
  bytes: number;
  completed: number;
  lastError: Error | null;
  terminating: boolean;
}

/**
 * Starts a pool of hashing workers. The workers do not keep the process alive while idle,
 * but do while any hash is pending; call `close()` when done anyway.
 *
 * @throws UsageError if `workers` is not a whole number ≥ 1.
 */
export function createHashPool(options: HashPoolOptions = {}): HashPool {
  const workerCount = options.workers ?? Math.max(1, Math.min(availableParallelism(), MAX_DEFAULT_WORKERS));
  if (!Number.isInteger(workerCount) || workerCount < 1) {
    throw new UsageError(`hash workers must be a whole number of at least 1, got ${workerCount}`);
  }
  const hook = options.spawnWorker;
  const spawn = hook ? () => hook(spawnDefaultWorker) : spawnDefaultWorker;

  const slots: Slot[] = [];
  // Large files, biggest first: starting the longest jobs first keeps workers finishing together.
  const largeQueue: Batch[] = [];
  // Full batches of small files, in order.
  const queue: Batch[] = [];
  let open: Batch | null = null;
  let nextId = 1;
  let flushScheduled = false;
  let closed = false;
  let closing: Promise<void> | null = null;
  let broken: Error | null = null;
  let startupCrashes = 0;

  for (let i = 0; i < workerCount; i++) addSlot();

  function addSlot(): void {
    let worker: Worker;
    try {
      worker = spawn();
    } catch (err) {
      fail(new Error(`hash worker could not be started: ${errMessage(err)}`, { cause: err }));
      return;
    }
    const slot: Slot = { worker, inFlight: new Map(), bytes: 0, completed: 0, lastError: null, terminating: false };
    slots.push(slot);
    worker.on("message", (res: HashResponse) => onResponse(slot, res));
    worker.on("error", (err: Error) => {
      slot.lastError = err;
    });
    worker.on("messageerror", (err: Error) => {
      // A reply we cannot decode would leave its batch waiting forever; treat it as a crash.
      slot.lastError = err;
      void worker.terminate();
    });
    worker.on("exit", (code: number) => onExit(slot, code));
    // Idle workers must not keep the process alive; refAccordingly() re-refs while work is pending.
    // After the listeners: adding a "message" listener refs the worker's port again.
    worker.unref();
  }

  function refAccordingly(slot: Slot): void {
    if (slot.inFlight.size > 0) slot.worker.ref();
    else slot.worker.unref();
  }

  function onResponse(slot: Slot, res: HashResponse): void {
    const batch = slot.inFlight.get(res.id);
    if (!batch) return;
    slot.inFlight.delete(res.id);
    slot.bytes -= batch.bytes;
    slot.completed += 1;
    startupCrashes = 0;
    refAccordingly(slot);
    for (let i = 0; i < batch.tasks.length; i++) {
      settle(batch.tasks[i] as Task, res.results[i]);
    }
    pump();
  }

  function onExit(slot: Slot, code: number): void {
    const index = slots.indexOf(slot);
    if (index >= 0) slots.splice(index, 1);
    if (closed) return;
    const reason = slot.lastError ? errMessage(slot.lastError) : `exit code ${code}`;
    for (const batch of slot.inFlight.values()) {
      for (const task of batch.tasks) {
        task.reject(new Error(`${task.path}: hash worker stopped unexpectedly (${reason})`, { cause: slot.lastError ?? undefined }));
      }
    }
    slot.inFlight.clear();
    if (slot.completed === 0) startupCrashes += 1;
    if (startupCrashes >= MAX_CONSECUTIVE_STARTUP_CRASHES) {
      fail(new Error(`hash workers keep stopping before doing any work (last: ${reason})`, { cause: slot.lastError ?? undefined }));
      return;
    }
    addSlot();
    pump();
  }

  /** Marks the pool unusable and rejects everything not yet sent to a live worker. */
  function fail(err: Error): void {
    if (broken) return;
    broken = err;
    for (const batch of takeUnsent()) for (const task of batch.tasks) task.reject(err);
  }

  function takeUnsent(): Batch[] {
    const unsent = [...largeQueue.splice(0, largeQueue.length), ...queue.splice(0, queue.length)];
    if (open) unsent.push(open);
    open = null;
    return unsent;
  }

  function settle(task: Task, result: HashResult | undefined): void {
    if (!result) {
      task.reject(new Error(`${task.path}: hash worker sent no result`));
    } else if (result.ok) {
      task.resolve({ sha256: result.sha256, size: result.size });
    } else if (result.kind === "integrity") {
      task.reject(new IntegrityError(`${task.path}: ${result.message}`));
    } else {
      const err: NodeJS.ErrnoException = new Error(result.message);
      if (result.code !== null) err.code = result.code;
      task.reject(fsError(err, task.path));
    }
  }

  /** Sends waiting batches to workers with room: large files first, then full batches, then the open one. */
  function pump(): void {
    for (;;) {
      if (largeQueue.length === 0 && queue.length === 0 && (open === null || open.tasks.length === 0)) return;
      let best: Slot | null = null;
      for (const slot of slots) {
        if (slot.terminating || !hasRoom(slot)) continue;
        if (best === null || slot.bytes < best.bytes) best = slot;
      }
      if (best === null) return;
      let batch = largeQueue.shift() ?? queue.shift();
      if (!batch) {
        batch = open as Batch;
        open = null;
      }
      best.inFlight.set(batch.id, batch);
      best.bytes += batch.bytes;
      refAccordingly(best);
      const req: HashRequest = { id: batch.id, files: batch.tasks.map((t) => ({ path: t.path, expected: t.expected })) };
      best.worker.postMessage(req);
    }
  }

  function hasRoom(slot: Slot): boolean {
    if (slot.inFlight.size === 0) return true;
    return slot.inFlight.size < BATCHES_IN_FLIGHT_PER_WORKER && slot.bytes <= PREFETCH_MAX_BYTES;
  }

  function enqueueLarge(batch: Batch): void {
    let lo = 0;
    let hi = largeQueue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((largeQueue[mid] as Batch).bytes >= batch.bytes) lo = mid + 1;
      else hi = mid;
    }
    largeQueue.splice(lo, 0, batch);
  }

  function scheduleFlush(): void {
    if (flushScheduled) return;
    flushScheduled = true;
    // setImmediate rather than a microtask: callers feeding files from several async steps still fill a batch.
    setImmediate(() => {
      flushScheduled = false;
      pump();
    });
  }

  function newBatch(): Batch {
    return { id: nextId++, tasks: [], bytes: 0 };
  }

  return {
    workers: workerCount,

    hashFile(absPath: string, expectedSize?: number): Promise<FileDigest> {
      return new Promise<FileDigest>((resolve, reject) => {
        if (closed) {
          reject(new Error(`${absPath}: hash pool is closed`));
          return;
        }
        if (broken) {
          reject(broken);
          return;
        }
        const task: Task = { path: absPath, expected: expectedSize ?? null, resolve, reject };
        if (expectedSize !== undefined && expectedSize >= LARGE_FILE) {
          const batch = newBatch();
          batch.tasks.push(task);
          batch.bytes = expectedSize;
          enqueueLarge(batch);
          // Sent on the next flush (or when a worker frees up), so large files requested together
          // are ordered biggest first rather than in call order.
          scheduleFlush();
          return;
        }
        if (open === null) open = newBatch();
        open.tasks.push(task);
        open.bytes += expectedSize ?? UNKNOWN_SIZE_WEIGHT;
        if (open.tasks.length >= BATCH_MAX_FILES || open.bytes >= BATCH_MAX_BYTES) {
          queue.push(open);
          open = null;
          pump();
        } else {
          scheduleFlush();
        }
      });
    },

    close(): Promise<void> {
      if (closing) return closing;
      closed = true;
      const err = new Error("hash pool closed before the file was hashed");
      for (const batch of takeUnsent()) for (const task of batch.tasks) task.reject(new Error(`${task.path}: ${err.message}`));
      const terminations: Promise<number>[] = [];
      for (const slot of slots) {
        slot.terminating = true;
        for (const batch of slot.inFlight.values()) {
          for (const task of batch.tasks) task.reject(new Error(`${task.path}: ${err.message}`));
        }
        slot.inFlight.clear();
        terminations.push(slot.worker.terminate());
      }
      closing = Promise.all(terminations).then(() => undefined);
      return closing;
    },
  };
}

function spawnDefaultWorker(): Worker {
  // Compiled, the worker sits next to this file in dist/hash/. Under vitest/tsx this module runs from
  // source, so the worker must too, with a TypeScript loader.
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./hash-worker.js", import.meta.url), { name: "hash-worker" });
  return new Worker(new URL("./hash-worker.ts", import.meta.url), { execArgv: ["--import", tsxPreload()], name: "hash-worker" });
}

let cachedTsxPreload: string | null = null;

// `--import tsx` is not enough in a worker on Node 20: tsx installs its hooks only on the main thread
// there (it checks isMainThread). Registering through its API from a preload works on every version.
// The API is given by absolute URL because a data: module cannot resolve bare package names.
function tsxPreload(): string {
  if (cachedTsxPreload === null) {
    const api = import.meta.resolve("tsx/esm/api");
    const code = `import { register } from ${JSON.stringify(api)}; register();`;
    cachedTsxPreload = `data:text/javascript,${encodeURIComponent(code)}`;
  }
  return cachedTsxPreload;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
