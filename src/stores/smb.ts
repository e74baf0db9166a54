// SMB store: a mirror on an SMB2 share (smb://[DOMAIN;]USER@host[:port]/share/path) with the folder store's journal, staging and retained generations.
import { createHash, randomBytes } from "node:crypto";
import { IntegrityError, IoError, NotFoundError, SourceError, UpdateMirrorError } from "../core/errors.js";
import { eachLimit } from "../core/each-limit.js";
import { MAX_MANIFEST_BYTES, type Manifest, parseManifest } from "../core/manifest.js";
import type { Committed, ManifestSigner, ReceiveExpectation, Store } from "../core/store.js";
import { MANIFEST_NAME, METADATA_DIR, objectName, PRIVATE_DIR, SIGNATURE_NAME } from "../mirror/layout.js";
import { commitMetadataWith, type MetadataWriter } from "../mirror/metadata.js";
import { addManifestHashes, versionsFromNames } from "../mirror/retained.js";
import type { HttpOptions } from "../net/http-options.js";
import { createSmbClient, type SmbClient, SmbError } from "../smb/client.js";
import { parseSmbUrl } from "../smb/url.js";
import { type JournalTree, publishJournaled, recoverJournal } from "./journal.js";
import { acquireLockFile } from "./lock-file.js";
import { listShardedObjects, makeMissingShards, type ShardFolders } from "./object-shards.js";
import { HISTORY_NAME, HISTORY_ROTATE_BYTES, historyLine, parseHistory } from "./history-file.js";
import { parseState, renderState } from "./state-file.js";

export interface SmbStoreOptions {
  /** The connect timeout and the idle timeout (longest wait for one reply). */
  http: HttpOptions;
  /** Password of the user named in the URL (given by reference upstream); a guest login needs none. */
  password?: string;
}

// Renames on one connection in flight while placing; Samba answers them in parallel.
const PLACE_CONCURRENCY = 8;
const REMOVE_CONCURRENCY = 8;
/** A journal lists every file placed and retained: a few hundred bytes per file. */
const JOURNAL_LIMIT = 1024 * 1024 * 1024;
const SMALL_LIMIT = 1024 * 1024;
/** Runs kept in the history on a share (about as many as a local store keeps across its two files). */
const HISTORY_KEEP = 1000;
/** NT statuses for "this server or file system has no hard links": the store copies instead. */
const NO_LINKS = new Set([0xc00000bb, 0xc0000010, 0xc000000d, 0xc0000022, 0xc0000061]);
const NAME_COLLISION = 0xc0000035;
const DIRECTORY_NOT_EMPTY = 0xc0000101;

/**
 * An SmbError is a SourceError (what a Source's callers expect); from a Store it is our own storage
 * failing, which must abort the run rather than fail over to another source.
 */
function storeError(err: unknown, label: string, what: string): UpdateMirrorError {
  if (err instanceof UpdateMirrorError && !(err instanceof SourceError)) return err;
  const message = (err as Error | undefined)?.message ?? String(err);
  const detail = message.startsWith(`${label}: `) ? message.slice(label.length + 2) : message;
  return new IoError(`${label}: ${what}: ${detail}`, { cause: err });
}

function statusOf(err: unknown): number | undefined {
  for (let e: unknown = err; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) {
    if (e instanceof SmbError && e.status !== undefined) return e.status;
  }
  return undefined;
}

/**
 * Opens the store on `spec`. Nothing connects until the first call. Store methods throw IoError (the
 * share's failures, NT status by name, never the password), NotFoundError, LockedError and
 * IntegrityError as the Store contract says. Throws UsageError for a bad URL.
 *
 * Differences from the folder store, by design: durability is the server's (each file is flushed
 * before it is renamed into place; a share has no syncfs); an interrupted download starts over
 * (staged objects survive, partial ones do not); where the server has no hard links, retained and
 * duplicated content is copied through this client.
 */
export function createSmbStore(spec: string, options: SmbStoreOptions): Store & { close(): Promise<void> } {
  const url = parseSmbUrl(spec, "SMB destination");
  const label = url.label;
  const client: SmbClient = createSmbClient(
    { host: url.host, port: url.port, share: url.share, domain: url.domain, user: url.user, password: options.password },
    { label, connectTimeoutMs: options.http.connectTimeoutMs, requestTimeoutMs: options.http.idleTimeoutMs },
  );
  const base = url.path.join("/");
  const remote = (path: string) => (base === "" ? path : `${base}/${path}`);
  const meta = remote(METADATA_DIR);
  const priv = `${meta}/${PRIVATE_DIR}`;
  const dirs = { objects: `${priv}/objects`, manifests: `${priv}/manifests`, tmp: `${priv}/tmp` };
  const files = { journal: `${priv}/journal.json`, journalManifest: `${priv}/journal.manifest.json`, state: `${priv}/state.json`, lock: `${priv}/lock`, history: `${priv}/${HISTORY_NAME}` };
  /** How a path on the share is named in messages: the store's label and the path below it. */
  const shown = (path: string) => `${label}${base === "" ? path : path.slice(base.length + 1)}`;
  const objectPath = (sha256: string) => `${dirs.objects}/${objectName(sha256)}`;
  const tmpName = (what: string) => `${dirs.tmp}/${what}.${randomBytes(6).toString("hex")}`;

  const inObjects = (rel: string) => (rel === "" ? dirs.objects : `${dirs.objects}/${rel}`);
  const shardFolders: ShardFolders = {
    list: (rel) => client.readdir(inObjects(rel)).catch((err: unknown) => (err instanceof NotFoundError ? [] : Promise.reject(err))),
    mkdir: (rel) => client.mkdir(inObjects(rel)),
    rename: (from, to) => client.rename(inObjects(from), inObjects(to), { replace: true }),
  };

  /** Object name to size, listed once per store (a readdir per shard folder); kept current by every change this store makes. */
  let objects: Promise<{ index: Map<string, number>; shards: Set<string> }> | undefined;
  function listObjects(): Promise<{ index: Map<string, number>; shards: Set<string> }> {
    objects ??= (async () => {
      const index = new Map<string, number>();
      const shards = await listShardedObjects(shardFolders, (sha256, size) => index.set(sha256, size ?? 0));
      return { index, shards };
    })().catch((err: unknown) => {
      objects = undefined;
      throw err;
    });
    return objects;
  }
  const objectIndex = async () => (await listObjects()).index;

  let prepared: Promise<void> | undefined;
  function prepare(): Promise<void> {
    prepared ??= (async () => {
      for (const dir of Object.values(dirs)) await client.mkdir(dir);
    })().catch((err: unknown) => {
      prepared = undefined;
      throw err;
    });
    return prepared;
  }

  /** prepare, and every shard folder made once per mirror, so objects are written without a mkdir each. */
  let shardsReady: Promise<void> | undefined;
  function prepareObjects(): Promise<void> {
    shardsReady ??= (async () => {
      await prepare();
      await makeMissingShards(shardFolders, (await listObjects()).shards);
    })().catch((err: unknown) => {
      shardsReady = undefined;
      throw err;
    });
    return shardsReady;
  }

  /** Folders known to exist, so placing 40,000 files does not ask for each file's folder again. */
  const madeDirs = new Set<string>();
  async function mkdirOnce(dir: string): Promise<void> {
    if (dir === "" || madeDirs.has(dir)) return;
    await client.mkdir(dir);
    madeDirs.add(dir);
  }
  const parentOf = (path: string) => path.slice(0, Math.max(0, path.lastIndexOf("/")));

  async function exists(path: string): Promise<boolean> {
    try {
      await client.stat(path);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  async function readText(path: string, limit: number): Promise<string | undefined> {
    return (await client.readSmall(path, limit))?.toString("utf8");
  }

  /** A copy through this client, under a temp name renamed over `to`: for servers without hard links. */
  async function copy(from: string, to: string): Promise<void> {
    const opened = await client.openRead(from);
    await client.writeFile(to, opened.body);
  }

  /** A second name for `from` at `to` (replacing `to` atomically): a hard link where the server has them, else a copy. */
  async function duplicate(from: string, to: string): Promise<void> {
    try {
      await client.link(from, to, { replace: true });
    } catch (err) {
      if (!NO_LINKS.has(statusOf(err) ?? 0)) throw err;
      await copy(from, to);
    }
  }

  let lastRead: { manifest: Manifest; bytes: Buffer } | undefined;

  const metadataWriter: MetadataWriter = {
    write: async (name, data) => {
      await client.writeFile(`${meta}/${name}`, data);
    },
    remove: async (name) => {
      await client.remove(`${meta}/${name}`).catch((err: unknown) => {
        if (!(err instanceof NotFoundError)) throw err;
      });
    },
  };

  const tree: JournalTree = {
    label,
    placeConcurrency: PLACE_CONCURRENCY,
    prepare: prepareObjects,
    holdsObject: async (sha256) => (await objectIndex()).has(sha256),
    payloadExists: (path) => exists(remote(path)),

    async retain(path, sha256) {
      const index = await objectIndex();
      if (index.has(sha256)) return;
      try {
        await client.link(remote(path), objectPath(sha256));
      } catch (err) {
        if (err instanceof NotFoundError) return;
        const status = statusOf(err);
        if (status === NAME_COLLISION) return;
        if (!NO_LINKS.has(status ?? 0)) throw err;
        await copy(remote(path), objectPath(sha256));
      }
      index.set(sha256, (await client.stat(objectPath(sha256))).size);
    },

    async place(sha256, path, consume) {
      const to = remote(path);
      await mkdirOnce(parentOf(to));
      if (consume) {
        await client.rename(objectPath(sha256), to, { replace: true });
      } else {
        const tmp = tmpName("place");
        await duplicate(objectPath(sha256), tmp);
        await client.rename(tmp, to, { replace: true });
      }
    },

    async forget(sha256) {
      (await objectIndex()).delete(sha256);
    },

    async remove(path) {
      await client.remove(remote(path)).catch((err: unknown) => {
        if (!(err instanceof NotFoundError)) throw err;
      });
      // Folders the removal left empty go too, up to the mirror root.
      const segments = path.split("/").slice(0, -1);
      while (segments.length > 0) {
        const dir = remote(segments.join("/"));
        try {
          await client.rmdir(dir);
        } catch (err) {
          if (err instanceof NotFoundError || statusOf(err) === DIRECTORY_NOT_EMPTY) return;
          throw err;
        }
        madeDirs.delete(dir);
        segments.pop();
      }
    },

    // Every file was flushed by the server before its rename; a share offers no syncfs to wait for.
    makeDurable: async () => undefined,

    readJournal: () => readText(files.journal, JOURNAL_LIMIT),
    writeJournal: async (text) => {
      await client.writeFile(files.journal, Buffer.from(text, "utf8"));
    },
    async readJournalManifest() {
      const bytes = await client.readSmall(files.journalManifest, MAX_MANIFEST_BYTES);
      if (bytes === undefined) throw new NotFoundError(`${label}: ${files.journalManifest}: the publish journal's manifest is missing`);
      return bytes;
    },
    writeJournalManifest: async (bytes) => {
      await client.writeFile(files.journalManifest, bytes);
    },
    async endJournal() {
      await client.remove(files.journal);
      await client.remove(files.journalManifest).catch((err: unknown) => {
        if (!(err instanceof NotFoundError)) throw err;
      });
      madeDirs.clear();
    },
    async commit(manifest, bytes, signature) {
      await commitMetadataWith(metadataWriter, manifest, signature === undefined ? undefined : () => signature, bytes);
    },
    freeBytes: () => client.freeBytes(),

    async generations() {
      try {
        return versionsFromNames((await client.readdir(dirs.manifests)).map((e) => e.name));
      } catch (err) {
        if (err instanceof NotFoundError) return [];
        throw err;
      }
    },
    writeGeneration: async (version, bytes) => {
      await client.writeFile(`${dirs.manifests}/${version}.json`, bytes);
    },
    removeGeneration: async (version) => {
      await client.remove(`${dirs.manifests}/${version}.json`).catch((err: unknown) => {
        if (!(err instanceof NotFoundError)) throw err;
      });
    },
    async addGenerationHashes(version, into) {
      const bytes = await client.readSmall(`${dirs.manifests}/${version}.json`, MAX_MANIFEST_BYTES);
      if (bytes === undefined) throw new NotFoundError(`${label}: generation ${version} is not retained`);
      addManifestHashes(bytes, into);
    },
    async pruneObjects(keep) {
      const index = await objectIndex();
      const unneeded = [...index.keys()].filter((name) => !keep(name));
      await eachLimit(unneeded, REMOVE_CONCURRENCY, async (name) => {
        await client.remove(objectPath(name)).catch((err: unknown) => {
          if (!(err instanceof NotFoundError)) throw err;
        });
        index.delete(name);
      });
    },
  };

  /** Removes temp files a crashed process left: staging temps, and the writer's `.NAME.*.um-part` beside metadata files. */
  async function clearTemps(): Promise<void> {
    const leftovers: string[] = [];
    for (const dir of [dirs.tmp, meta, priv, dirs.manifests, dirs.objects]) {
      const entries = await client.readdir(dir).catch((err: unknown) => (err instanceof NotFoundError ? [] : Promise.reject(err)));
      for (const e of entries) if (!e.isDirectory && (dir === dirs.tmp || e.name.endsWith(".um-part"))) leftovers.push(`${dir}/${e.name}`);
    }
    await eachLimit(leftovers, REMOVE_CONCURRENCY, (path) => client.remove(path).catch(() => undefined));
  }

  async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw storeError(err, label, what);
    }
  }

  async function receive(key: string, body: AsyncIterable<Uint8Array>, expect: ReceiveExpectation): Promise<{ sha256: string; size: number }> {
    const hash = createHash("sha256");
    let size = 0;
    let failure: unknown;
    let sha256 = "";
    // Verified as it streams: the writer never renames a body that is long, short or wrong into a name.
    async function* verified(): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of body) {
          size += chunk.byteLength;
          if (size > expect.size) throw new IntegrityError(`${label}: ${key}: more than the expected ${expect.size} bytes; refused`);
          hash.update(chunk);
          yield chunk;
        }
      } catch (err) {
        failure ??= err;
        throw err;
      }
      const digest = hash.digest("hex");
      if (size < expect.size) failure = new IntegrityError(`${label}: ${key}: ended after ${size} of ${expect.size} bytes`, { retryable: true });
      else if (expect.sha256 !== undefined && digest !== expect.sha256) failure = new IntegrityError(`${label}: ${key}: SHA-256 ${digest}, expected ${expect.sha256}; refused`);
      if (failure !== undefined) throw failure;
      // The caller's own string when it named the hash: one copy of each hash in memory, not two.
      sha256 = expect.sha256 ?? digest;
    }
    await guard(`staging ${key}`, prepareObjects);
    // Named by its hash once the last byte is in and checked: the rename goes through the open handle.
    try {
      await client.writeFile(tmpName("receive"), verified(), { finalName: () => objectPath(sha256) });
    } catch (err) {
      if (failure !== undefined) throw failure;
      throw storeError(err, label, `staging ${key}`);
    }
    (await guard(`staging ${key}`, objectIndex)).set(sha256, size);
    return { sha256, size };
  }

  return {
    label,

    lock: (command) =>
      guard("taking the lock", async () => {
        await prepare();
        return acquireLockFile(
          {
            where: shown(files.lock),
            async create(text) {
              const tmp = tmpName("lock");
              await client.writeFile(tmp, Buffer.from(text, "utf8"));
              try {
                await client.rename(tmp, files.lock);
                return true;
              } catch (err) {
                await client.remove(tmp).catch(() => undefined);
                if (statusOf(err) === NAME_COLLISION) return false;
                throw err;
              }
            },
            read: () => readText(files.lock, SMALL_LIMIT).catch(() => undefined),
            remove: () => client.remove(files.lock),
          },
          command,
          label,
        );
      }),

    recover: () =>
      guard("finishing the interrupted publish", async () => {
        await clearTemps();
        lastRead = undefined;
        return recoverJournal(tree);
      }),

    readCommitted: () =>
      guard("reading the manifest", async (): Promise<Committed | undefined> => {
        lastRead = await readCommittedBytes();
        if (lastRead === undefined) return undefined;
        const signature = await client.readSmall(`${meta}/${SIGNATURE_NAME}`, SMALL_LIMIT);
        return { ...lastRead, signed: signature !== undefined };
      }),

    readState: () => guard("reading the state", async () => parseState(await readText(files.state, JOURNAL_LIMIT), shown(files.state))),
    writeState: (state) =>
      guard("writing the state", async () => {
        await prepare();
        await client.writeFile(files.state, Buffer.from(renderState(state), "utf8"));
      }),

    // A share has no append of ours: the history is rewritten whole (it is small), keeping the newest records.
    appendHistory: (record) =>
      guard("recording the run", async () => {
        await prepare();
        const records = parseHistory((await readText(files.history, 4 * HISTORY_ROTATE_BYTES)) ?? "");
        const lines = [...records, record].slice(-HISTORY_KEEP).map(historyLine);
        await client.writeFile(files.history, Buffer.from(lines.join(""), "utf8"));
      }),
    readHistory: () => guard("reading the history", async () => parseHistory((await readText(files.history, 4 * HISTORY_ROTATE_BYTES)) ?? "")),

    hasObject: (sha256, size) => guard("reading staged objects", async () => (await objectIndex()).get(sha256) === size),
    // An interrupted download starts over: a partial on a share cannot be reopened for appending by this client.
    partial: async () => ({ size: 0 }),
    receive,
    freeBytes: () => guard("free space", () => client.freeBytes()),

    publish: (next: Manifest, options: { sign?: ManifestSigner; keepGenerations: number }) =>
      guard(`publishing version ${next.version}`, async () => {
        const committed = lastRead ?? (await readCommittedBytes());
        try {
          await publishJournaled(tree, committed, next, options);
        } finally {
          lastRead = undefined;
        }
      }),

    generations: () => guard("listing generations", () => tree.generations()),
    readGeneration: (version) =>
      guard(`generation ${version}`, async () => {
        const file = `${dirs.manifests}/${version}.json`;
        const bytes = await client.readSmall(file, MAX_MANIFEST_BYTES);
        if (bytes === undefined) throw new NotFoundError(`${label}: generation ${version} is not retained`);
        return parseManifest(bytes, shown(file));
      }),

    close: () => client.close(),
  };

  async function readCommittedBytes(): Promise<{ manifest: Manifest; bytes: Buffer } | undefined> {
    const bytes = await client.readSmall(`${meta}/${MANIFEST_NAME}`, MAX_MANIFEST_BYTES);
    return bytes === undefined ? undefined : { manifest: parseManifest(bytes, shown(`${meta}/${MANIFEST_NAME}`)), bytes };
  }
}
