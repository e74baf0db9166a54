// Several server processes on one port (node:cluster): the primary forks the workers, stops them, replaces crashed ones and sums their metrics.
import cluster, { type Worker } from "node:cluster";
import type { ServeLog } from "./live-snapshot.js";
import { type ProcessCounters, sumCounters } from "./metrics.js";

/** What a worker reports once it listens. */
export interface WorkerReady {
  url: string;
  version: number;
  files: number;
}

type Message =
  | { um: "ready"; ready: WorkerReady }
  /** worker -> primary: sum every worker's counters for me. */
  | { um: "gather"; id: number }
  /** primary -> worker: send your counters. */
  | { um: "collect"; id: number }
  | { um: "counters"; id: number; counters: ProcessCounters }
  | { um: "gathered"; id: number; counters: ProcessCounters; processes: number }
  /** worker -> primary -> the other workers: a file with this identity was hashed and holds these bytes. */
  | { um: "verdict"; identity: string; sha256: string }
  /** primary -> worker: finish what is in flight and exit. */
  | { um: "stop" };

function isMessage(value: unknown): value is Message {
  return typeof value === "object" && value !== null && typeof (value as { um?: unknown }).um === "string";
}

/** True in a process forked by startPrimary. */
export function isWorker(): boolean {
  return cluster.isWorker;
}

export interface PrimaryOptions {
  workers: number;
  log: ServeLog;
  /** How long workers may take to stop before they are killed. */
  stopTimeoutMs: number;
  /** Replacements allowed within a minute before the primary gives up (default 5). */
  maxRestartsPerMinute?: number;
}

export interface Primary {
  /** Resolves once every worker listens; rejects with the exit code of a worker that died before. */
  ready: Promise<WorkerReady>;
  /** Resolves when the server should stop for good: workers keep dying (rejects), or never when all is well. */
  failed: Promise<never>;
  /** Asks every worker to reload its certificate and auth file (SIGHUP). */
  reload(): void;
  /** Asks every worker to finish what is in flight and exit; kills those still running after the stop timeout. */
  stop(): Promise<void>;
}

const GATHER_TIMEOUT_MS = 1000;

/** A worker that exited before it listened: its own message is already on stderr. */
export class WorkerStartError extends Error {
  readonly exitCode: number;
  constructor(exitCode: number) {
    super(`a server process exited with code ${exitCode} before it could listen (its message is above)`);
    this.exitCode = exitCode;
  }
}

/**
 * Forks `workers` copies of this command (same script and arguments; each one sees isWorker()).
 * Connections are shared out by node:cluster (round-robin on Linux). A worker that dies after the
 * start is replaced; too many deaths in a minute fail the server.
 */
export function startPrimary(options: PrimaryOptions): Primary {
  const alive = new Set<Worker>();
  const listening = new Set<Worker>();
  const gathers = new Map<number, { requester: Worker; requesterId: number; reports: ProcessCounters[]; expected: number; timer: NodeJS.Timeout }>();
  const restarts: number[] = [];
  let gatherSeq = 0;
  let stopping = false;
  let first: WorkerReady | undefined;
  let resolveReady: (ready: WorkerReady) => void = () => undefined;
  let rejectReady: (err: Error) => void = () => undefined;
  let rejectFailed: (err: Error) => void = () => undefined;
  const ready = new Promise<WorkerReady>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  const failed = new Promise<never>((_resolve, reject) => {
    rejectFailed = reject;
  });
  // Observed here so an unused promise never counts as an unhandled rejection.
  ready.catch(() => undefined);
  failed.catch(() => undefined);

  function finishGather(key: number): void {
    const gather = gathers.get(key);
    if (gather === undefined) return;
    gathers.delete(key);
    clearTimeout(gather.timer);
    if (!gather.requester.isConnected()) return;
    gather.requester.send({ um: "gathered", id: gather.requesterId, counters: sumCounters(gather.reports), processes: gather.reports.length } satisfies Message);
  }

  function onMessage(worker: Worker, message: unknown): void {
    if (!isMessage(message)) return;
    if (message.um === "ready") {
      listening.add(worker);
      // A stop sent while this worker was still starting came before it listened for messages, and was lost.
      if (stopping) {
        worker.send({ um: "stop" } satisfies Message);
        return;
      }
      first ??= message.ready;
      if (listening.size === options.workers) resolveReady(first);
    } else if (message.um === "gather") {
      gatherSeq += 1;
      const key = gatherSeq;
      const targets = [...alive].filter((w) => w.isConnected());
      gathers.set(key, { requester: worker, requesterId: message.id, reports: [], expected: targets.length, timer: setTimeout(() => finishGather(key), GATHER_TIMEOUT_MS) });
      for (const target of targets) target.send({ um: "collect", id: key } satisfies Message);
    } else if (message.um === "verdict") {
      // Every worker serves the same files: one hash check is enough for all of them.
      for (const other of alive) if (other !== worker && other.isConnected()) other.send(message);
    } else if (message.um === "counters") {
      const gather = gathers.get(message.id);
      if (gather === undefined) return;
      gather.reports.push(message.counters);
      if (gather.reports.length >= gather.expected) finishGather(message.id);
    }
  }

  function fork(): void {
    const worker = cluster.fork();
    alive.add(worker);
    worker.on("message", (message: unknown) => onMessage(worker, message));
    worker.on("exit", (code, signal) => {
      alive.delete(worker);
      const wasListening = listening.delete(worker);
      if (stopping) return;
      if (first === undefined && !wasListening) {
        stopping = true;
        for (const other of alive) other.kill("SIGKILL");
        rejectReady(new WorkerStartError(code ?? 1));
        return;
      }
      const now = Date.now();
      restarts.push(now);
      while (restarts.length > 0 && (restarts[0] as number) < now - 60_000) restarts.shift();
      options.log.error({ event: "serve:worker-exit", workerPid: worker.process.pid, code, signal }, "a server process died; starting a replacement");
      if (restarts.length > (options.maxRestartsPerMinute ?? 5)) {
        rejectFailed(new Error(`server processes died ${restarts.length} times within a minute; giving up`));
        return;
      }
      fork();
    });
  }

  for (let i = 0; i < options.workers; i += 1) fork();

  return {
    ready,
    failed,
    reload() {
      for (const worker of alive) worker.process.kill("SIGHUP");
    },
    async stop() {
      stopping = true;
      const exits = [...alive].map((worker) => new Promise<void>((resolve) => (worker.isDead() ? resolve() : worker.once("exit", () => resolve()))));
      for (const worker of alive) if (worker.isConnected()) worker.send({ um: "stop" } satisfies Message);
      // Workers bound their own drain by the same timeout; this is the backstop for one that hangs.
      const kill = setTimeout(() => {
        for (const worker of alive) worker.kill("SIGKILL");
      }, options.stopTimeoutMs + 5000);
      await Promise.all(exits);
      clearTimeout(kill);
    },
  };
}

export interface WorkerLink {
  /** Tells the primary this worker listens. */
  announce(ready: WorkerReady): void;
  /** Resolves when the primary asks this worker to stop, or goes away. */
  stopRequested: Promise<void>;
  /** Passes a hash check's verdict on to the other workers. */
  shareVerdict(identity: string, sha256: string): void;
  /** Sums the counters of every worker (this one included) through the primary; falls back to `local` alone. */
  gatherCounters(local: ProcessCounters): Promise<{ counters: ProcessCounters; processes: number }>;
  /** Closes the channel so the process can exit. */
  close(): void;
}

/** The worker's side of the channel; `counters` is read whenever the primary collects, `learn` takes other workers' verdicts. */
export function linkWorker(counters: () => ProcessCounters, learn: (identity: string, sha256: string) => void): WorkerLink {
  const pending = new Map<number, (result: { counters: ProcessCounters; processes: number }) => void>();
  let seq = 0;
  let onStop: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => {
    onStop = resolve;
  });
  const send = (message: Message) => {
    if (process.connected) process.send?.(message);
  };
  process.on("message", (message: unknown) => {
    if (!isMessage(message)) return;
    if (message.um === "collect") send({ um: "counters", id: message.id, counters: counters() });
    else if (message.um === "gathered") pending.get(message.id)?.({ counters: message.counters, processes: message.processes });
    else if (message.um === "verdict") learn(message.identity, message.sha256);
    else if (message.um === "stop") onStop();
  });
  // A primary that is gone cannot stop us any more: stop on our own.
  process.on("disconnect", () => onStop());
  return {
    announce: (ready) => send({ um: "ready", ready }),
    shareVerdict: (identity, sha256) => send({ um: "verdict", identity, sha256 }),
    stopRequested,
    gatherCounters(local) {
      seq += 1;
      const id = seq;
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          resolve({ counters: local, processes: 1 });
        }, GATHER_TIMEOUT_MS + 500);
        pending.set(id, (result) => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(result);
        });
        send({ um: "gather", id });
      });
    },
    close() {
      // Through the cluster API: a worker whose channel simply closes exits on the spot, and would
      // lose log lines still being written (the log is asynchronous); this way it exits once idle.
      if (process.connected) {
        if (cluster.worker) cluster.worker.disconnect();
        else process.disconnect();
      }
    },
  };
}
