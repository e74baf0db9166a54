// An in-memory Store for unit tests only: the whole Store contract (src/core/store.ts) held in maps, nothing on disk, never shipped.
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { IntegrityError, LockedError, NotFoundError } from "../../src/core/errors.js";
import { type Manifest, parseManifest, serializeManifest } from "../../src/core/manifest.js";
import type { Committed, ManifestSigner, MirrorState, ReceiveExpectation, RunRecord, Store } from "../../src/core/store.js";

/** Runs the history keeps, like the real stores' bound. */
const HISTORY_KEEP = 1000;

export interface MemoryStoreOptions {
  /** The store's label (default "memory"). */
  label?: string;
  /** What freeBytes() reports (default 1 TiB). */
  freeBytes?: number;
}

/** A Store in memory, with read-only views of what a reader of the mirror would see. */
export interface MemoryStore extends Store {
  /** The published payload, path → bytes: what the committed manifest lists, as a reader would find it. */
  readonly payload: ReadonlyMap<string, Buffer>;
  /** Verified content held besides the payload (staged or retained), by SHA-256. */
  readonly objects: ReadonlyMap<string, Buffer>;
}

const EMPTY_STATE: MirrorState = { highestVersion: 0, sources: {}, trusted: {}, listed: {} };

interface Generation {
  manifest: Manifest;
  bytes: Buffer;
}

/**
 * Creates an empty in-memory store. It behaves as the folder store does where the contract speaks:
 * receive hashes as it goes, refuses a body longer than announced or with another hash (dropping the
 * partial), keeps the bytes of a body that ended short or threw for a resume with `append: true`;
 * publish is all or nothing, retains the replaced and removed content for `keepGenerations` previous
 * manifests and prunes what only older ones needed; a second lock is refused with LockedError naming
 * the holder. A publish cannot be interrupted here, so recover() never has anything to finish.
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  const label = options.label ?? "memory";
  const free = options.freeBytes ?? 2 ** 40;
  const objects = new Map<string, Buffer>();
  const partials = new Map<string, { data: Buffer; validator?: string }>();
  const payload = new Map<string, Buffer>();
  const generations = new Map<number, Generation>();
  let committed: (Generation & { signed: boolean }) | undefined;
  let state: MirrorState = structuredClone(EMPTY_STATE);
  const history: RunRecord[] = [];
  let holder: { host: string; pid: number; started: string; command: string; token: symbol } | undefined;

  /** Verified content with this hash, wherever the store holds it: an object or a committed file. */
  function contentOf(sha256: string): Buffer | undefined {
    const object = objects.get(sha256);
    if (object) return object;
    const file = committed?.manifest.files.find((f) => f.sha256 === sha256);
    return file && payload.get(file.path);
  }

  async function receive(key: string, body: AsyncIterable<Uint8Array>, expect: ReceiveExpectation): Promise<{ sha256: string; size: number }> {
    const chunks: Buffer[] = [];
    let size = 0;
    if (expect.append) {
      const previous = partials.get(key);
      if (!previous) throw new NotFoundError(`${label}: no partial download of ${key} to append to`);
      chunks.push(previous.data);
      size = previous.data.length;
    }
    // A fresh download starts the partial over.
    partials.delete(key);
    const keepForResume = () => {
      partials.set(key, { data: Buffer.concat(chunks, size), ...(expect.validator !== undefined && { validator: expect.validator }) });
    };
    try {
      for await (const chunk of body) {
        size += chunk.length;
        if (size > expect.size) throw new IntegrityError(`${key}: more bytes than the expected ${expect.size}`);
        // A copy: the body may reuse its buffers.
        chunks.push(Buffer.from(chunk));
      }
    } catch (err) {
      // A too-long body leaves nothing worth resuming; a cut one does.
      if (err instanceof IntegrityError) throw err;
      keepForResume();
      throw err;
    }
    if (size < expect.size) {
      keepForResume();
      throw new IntegrityError(`${key}: ended after ${size} of ${expect.size} bytes`, { retryable: true });
    }
    const data = Buffer.concat(chunks, size);
    const sha256 = createHash("sha256").update(data).digest("hex");
    if (expect.sha256 !== undefined && sha256 !== expect.sha256) throw new IntegrityError(`${key}: SHA-256 is ${sha256}, expected ${expect.sha256}`);
    objects.set(sha256, data);
    return { sha256, size };
  }

  /** Keeps the newest `keep` previous manifests and only the objects they need that the payload does not hold. */
  function pruneGenerations(current: Manifest, keep: number): void {
    const versions = [...generations.keys()].filter((v) => v !== current.version).sort((a, b) => b - a);
    for (const v of versions.slice(keep)) generations.delete(v);
    const needed = new Set<string>();
    for (const v of versions.slice(0, keep)) for (const f of (generations.get(v) as Generation).manifest.files) needed.add(f.sha256);
    for (const f of current.files) needed.delete(f.sha256);
    for (const sha256 of [...objects.keys()]) if (!needed.has(sha256)) objects.delete(sha256);
  }

  return {
    label,
    payload,
    objects,

    async lock(command) {
      if (holder) throw new LockedError(`${label} is locked by PID ${holder.pid} on ${holder.host}, running "${holder.command}" since ${holder.started}`);
      const token = Symbol(command);
      holder = { host: hostname(), pid: process.pid, started: new Date().toISOString(), command, token };
      return async () => {
        if (holder?.token === token) holder = undefined;
      };
    },

    async recover() {
      return undefined;
    },

    async readCommitted(): Promise<Committed | undefined> {
      if (!committed) return undefined;
      return { manifest: parseManifest(committed.bytes, label), bytes: Buffer.from(committed.bytes), signed: committed.signed };
    },

    async readState() {
      return structuredClone(state);
    },

    async writeState(next) {
      state = structuredClone(next);
    },

    async appendHistory(record) {
      history.push(structuredClone(record));
      if (history.length > HISTORY_KEEP) history.splice(0, history.length - HISTORY_KEEP);
    },

    async readHistory() {
      return structuredClone(history);
    },

    async hasObject(sha256, size) {
      return contentOf(sha256)?.length === size;
    },

    async partial(key) {
      const p = partials.get(key);
      if (!p) return { size: 0 };
      return p.validator === undefined ? { size: p.data.length } : { size: p.data.length, validator: p.validator };
    },

    receive,

    async freeBytes() {
      return free;
    },

    async publish(next, publishOptions: { sign?: ManifestSigner; keepGenerations: number }) {
      // The strict reader, as every consumer of the committed bytes will use it: a bad manifest changes nothing.
      const bytes = serializeManifest(next);
      const manifest = parseManifest(bytes, `${label}: version ${next.version}`);
      const placed = new Map<string, Buffer>();
      for (const f of manifest.files) {
        const content = contentOf(f.sha256);
        if (content === undefined) throw new NotFoundError(`${label}: nothing staged for ${f.path} (${f.sha256})`);
        placed.set(f.path, content);
      }
      const signed = publishOptions.sign !== undefined;
      if (publishOptions.sign) publishOptions.sign(bytes);
      if (committed) {
        // Replaced and removed content stays as objects, for a rollback to the generation that listed it.
        for (const f of committed.manifest.files) if (!objects.has(f.sha256)) objects.set(f.sha256, payload.get(f.path) as Buffer);
        generations.set(committed.manifest.version, { manifest: committed.manifest, bytes: committed.bytes });
      }
      payload.clear();
      for (const [path, content] of placed) payload.set(path, content);
      committed = { manifest, bytes, signed };
      pruneGenerations(manifest, publishOptions.keepGenerations);
    },

    async generations() {
      return [...generations.keys()].filter((v) => v !== committed?.manifest.version).sort((a, b) => b - a);
    },

    async readGeneration(version) {
      const generation = generations.get(version);
      if (!generation || version === committed?.manifest.version) throw new NotFoundError(`${label}: generation ${version} is not retained`);
      return parseManifest(generation.bytes, `${label}: generation ${version}`);
    },
  };
}
