// Our SMB2 client: node-smb2's framing and NTLMv2 under one connection of ours, with its gaps closed (interim replies, paged listings, atomic replace, typed errors).
import { randomBytes } from "node:crypto";
import { NotFoundError, UpdateMirrorError } from "../core/errors.js";

import {
  ATTR_DIRECTORY,
  ATTR_REPARSE_POINT,
  big,
  CAP_LARGE_MTU,
  Cmd,
  CREATE,
  DELETE,
  FILE_DIRECTORY_FILE,
  FILE_DISPOSITION_INFORMATION,
  FILE_FS_FULL_SIZE_INFORMATION,
  FILE_ID_BOTH_DIRECTORY_INFORMATION,
  FILE_LINK_INFORMATION,
  FILE_NON_DIRECTORY_FILE,
  FILE_RENAME_INFORMATION,
  filetimeMs,
  INFO_FILE,
  INFO_FILESYSTEM,
  IO_CHUNK,
  IO_CHUNK_LARGE,
  IO_WINDOW,
  LIST_DIRECTORY,
  ntStatusName,
  OPEN,
  OPEN_IF,
  parseDirectoryPage,
  READ_ATTRIBUTES,
  READ_DATA,
  S,
  SESSION_ENCRYPT_DATA,
  SESSION_GONE,
  SHARE_ENCRYPT_DATA,
  SIGNING_REQUIRED,
  SmbError,
  type SmbDirEntry,
  type SmbStat,
  smbPath,
  securityHint,
  statusOf,
  SYNCHRONIZE,
  TRANSIENT,
  WRITE_ATTRIBUTES,
  WRITE_DATA,
} from "./protocol.js";
import { type LibResponse, lib, quietly, type Transport } from "./transport.js";

export { ntStatusName, SmbError, type SmbDirEntry, type SmbStat };

/** Where to connect and as whom. The password comes by reference (never from a URL). */
export interface SmbTarget {
  host: string;
  port: number;
  share: string;
  /** NTLM domain (workgroup); "" lets the server pick its own. */
  domain: string;
  /** undefined: an anonymous (guest) session. */
  user?: string | undefined;
  password?: string | undefined;
}

export interface SmbClientOptions {
  /** Names the share in messages; never carries credentials. */
  label: string;
  connectTimeoutMs: number;
  /** Longest wait for any one reply; a request that takes longer drops the connection (the next call reconnects). */
  requestTimeoutMs: number;
}


export interface SmbReadOptions {
  offset?: number;
  signal?: AbortSignal;
}

export interface SmbOpenedRead {
  /** Size of the file when it was opened. */
  size: number;
  stat: SmbStat;
  /** Bytes from `offset` to `size`, in order; errors (never ends quietly) when the read fails or the file shrinks. Closes the handle when it ends. */
  body: AsyncGenerator<Buffer>;
  /** Closes the handle without reading (a generator never started runs no `finally`). Idempotent. */
  close(): Promise<void>;
}

interface Connection {
  transport: Transport;
  sessionId: string;
  treeId: number;
  /** Bytes one READ or WRITE may carry on this connection. */
  ioChunk: number;
}

/** An open handle on one connection. */
interface Handle {
  conn: Connection;
  fileId: string;
  stat: SmbStat;
}

export interface SmbClient {
  readonly label: string;
  stat(path: string): Promise<SmbStat>;
  /** Every entry of a folder ("." and ".." left out), paging until the server has no more. */
  readdir(path: string, signal?: AbortSignal): Promise<SmbDirEntry[]>;
  /** Opens a file for a streamed read from `offset` (sequential 64 KiB requests, a few in flight). */
  openRead(path: string, options?: SmbReadOptions): Promise<SmbOpenedRead>;
  /** Reads a small file whole; undefined when it does not exist; SmbError when larger than `limit`. */
  readSmall(path: string, limit: number): Promise<Buffer | undefined>;
  /**
   * Writes `data` to a temporary name beside `path`, flushes it, then renames it over `path` (replacing
   * atomically) before closing it. With `finalName`, the name is asked for once all data is written
   * (content-addressed names). Nothing is left under any name when it fails. Returns the bytes written.
   */
  writeFile(path: string, data: AsyncIterable<Uint8Array> | Uint8Array, options?: { signal?: AbortSignal; finalName?: () => string }): Promise<number>;
  /**
   * Makes `to` a second name of the file `from` (a hard link; the server needs a file system that has
   * them). With `replace`, an existing `to` is replaced atomically. SmbError with STATUS_NOT_SUPPORTED
   * (or another status) where the server cannot.
   */
  link(from: string, to: string, options?: { replace?: boolean }): Promise<void>;
  /** Bytes the share's user may still write (the server's quota and free space). */
  freeBytes(): Promise<number>;
  /** Renames a file or folder; with `replace`, an existing target file is replaced atomically. */
  rename(from: string, to: string, options?: { replace?: boolean }): Promise<void>;
  /** Creates a folder and its missing parents; an existing folder is fine. */
  mkdir(path: string): Promise<void>;
  /** Deletes a file. NotFoundError when it is not there. */
  remove(path: string): Promise<void>;
  /** Deletes an empty folder. */
  rmdir(path: string): Promise<void>;
  /** Drops the connection. Idempotent; a later call connects again. */
  close(): Promise<void>;
}

/**
 * A client for one share. Nothing connects until the first call; one connection carries every request
 * (SMB multiplexes them), and a connection that failed is dropped and made again by the next call.
 */
export function createSmbClient(target: SmbTarget, options: SmbClientOptions): SmbClient {
  const label = options.label;
  let current: Promise<Connection> | undefined;

  function describe(err: unknown, what: string): UpdateMirrorError {
    if (err instanceof UpdateMirrorError) return err;
    const status = statusOf(err);
    if (status !== undefined) {
      const name = ntStatusName(status);
      if (status === S.NAME_NOT_FOUND || status === S.PATH_NOT_FOUND) {
        return new NotFoundError(`${label}: ${what}: not found (${name})`, { cause: new SmbError(`${label}: ${what}: ${name}`, { status, retryable: false }) });
      }
      return new SmbError(`${label}: ${what}: ${name}`, { status, retryable: TRANSIENT.has(status) });
    }
    const e = err as (Error & { code?: unknown }) | undefined;
    const code = typeof e?.code === "string" ? e.code : "";
    const message = e?.message ?? String(err);
    return new SmbError(`${label}: ${what}: ${code !== "" && !message.includes(code) ? `${code}: ` : ""}${message}`, { cause: err, retryable: true });
  }

  async function connect(): Promise<Connection> {
    const { Transport, ntlm } = lib();
    const transport = new Transport(target.host, { port: target.port, connectTimeout: options.connectTimeoutMs, requestTimeout: options.requestTimeoutMs });
    const raw = (header: Record<string, unknown>, body: Record<string, unknown>) => transport.request(header, body);
    let stage = "connect";
    try {
      await transport.connect().catch((err: unknown) => {
        if ((err as Error | undefined)?.message === "connect_timeout") throw new SmbError(`${label}: no connection within ${options.connectTimeoutMs} ms`, { cause: err });
        throw err;
      });
      stage = "negotiate";
      const negotiated = await raw({ type: Cmd.Negotiate }, { dialects: [0x0202, 0x0210], clientGuid: randomBytes(16), securityMode: 1, capabilities: CAP_LARGE_MTU }).catch((err: unknown) => {
        if (statusOf(err) === S.NOT_SUPPORTED) {
          throw new SmbError(securityHint(label, "the server accepts only SMB3 dialects (STATUS_NOT_SUPPORTED at negotiate)"), { status: S.NOT_SUPPORTED, retryable: false, cause: err });
        }
        throw err;
      });
      if (((negotiated.body.securityMode as number) & SIGNING_REQUIRED) !== 0) {
        throw new SmbError(securityHint(label, "the server requires SMB signing"), { retryable: false });
      }
      stage = "session setup";
      const user = target.user ?? "";
      const password = target.password ?? "";
      const challenge = await raw({ type: Cmd.SessionSetup }, { buffer: ntlm.encodeNegotiationMessage(target.host, target.domain, "v2") });
      const sessionId = challenge.header.sessionId as string;
      const nonce = ntlm.decodeChallengeMessage(challenge.body.buffer as Buffer);
      const auth = quietly(() => ntlm.encodeAuthenticationMessage(user, target.host, target.domain, nonce, password, 0, "v2"));
      const session = await raw({ type: Cmd.SessionSetup, sessionId }, { buffer: auth }).catch((err: unknown) => {
        const status = statusOf(err);
        if (status === S.LOGON_FAILURE || status === 0xc0000064 || status === 0xc0000072 || status === 0xc0000234 || status === 0xc0000071 || status === 0xc0000224 || status === 0xc000006e) {
          const who = target.user === undefined ? "an anonymous (guest) login" : `user ${JSON.stringify(target.user)}${target.domain !== "" ? ` in domain ${JSON.stringify(target.domain)}` : ""}`;
          throw new SmbError(`${label}: login refused for ${who} (${ntStatusName(status)}); check the user in the URL (smb://[DOMAIN;]USER@host/share) and the password (--smb-password-env or --smb-password-file)`, { status, retryable: false, cause: err });
        }
        if (status === S.ACCESS_DENIED) {
          throw new SmbError(securityHint(label, "the server refused the session (STATUS_ACCESS_DENIED at session setup; it probably requires signing or SMB3 encryption)"), { status, retryable: false, cause: err });
        }
        throw err;
      });
      if (((session.body.sessionFlags as number) & SESSION_ENCRYPT_DATA) !== 0) {
        throw new SmbError(securityHint(label, "the server requires SMB3 encryption for this session"), { retryable: false });
      }
      stage = `connecting to share ${JSON.stringify(target.share)}`;
      const tree = await raw({ type: Cmd.TreeConnect, sessionId }, { buffer: Buffer.from(`\\\\${target.host}\\${target.share}`, "utf16le") }).catch((err: unknown) => {
        const status = statusOf(err);
        if (status === S.BAD_NETWORK_NAME) throw new NotFoundError(`${label}: the server has no share ${JSON.stringify(target.share)} (STATUS_BAD_NETWORK_NAME)`, { cause: err });
        if (status === S.ACCESS_DENIED) {
          throw new SmbError(
            securityHint(label, `access to share ${JSON.stringify(target.share)} denied (STATUS_ACCESS_DENIED at tree connect): either this user may not use the share, or the server requires signing or SMB3 encryption`),
            { status, retryable: false, cause: err },
          );
        }
        throw err;
      });
      if (((tree.body.shareFlags as number) & SHARE_ENCRYPT_DATA) !== 0) {
        throw new SmbError(securityHint(label, `share ${JSON.stringify(target.share)} requires SMB3 encryption`), { retryable: false });
      }
      // SMB 2.1 with large MTU: one request may carry up to the server's max read/write size, charged a credit per 64 KiB.
      const largeMtu = (negotiated.body.dialectRevision as number) === 0x0210 && ((negotiated.body.capabilities as number) & CAP_LARGE_MTU) !== 0;
      const ioChunk = largeMtu
        ? Math.max(IO_CHUNK, Math.min(IO_CHUNK_LARGE, Number(negotiated.body.maxReadSize ?? 0), Number(negotiated.body.maxWriteSize ?? 0)))
        : IO_CHUNK;
      return { transport, sessionId, treeId: tree.header.treeId as number, ioChunk };
    } catch (err) {
      transport.fail(new Error("connection abandoned"));
      throw describe(err, stage);
    }
  }

  async function connection(): Promise<Connection> {
    if (current) {
      const conn = await current.catch(() => undefined);
      if (conn && !conn.transport.failure) return conn;
    }
    const attempt = connect();
    current = attempt;
    // A failed connect is not cached: the next call tries again.
    attempt.catch(() => {
      if (current === attempt) current = undefined;
    });
    return attempt;
  }

  /** One request on `conn`; a failure that leaves the session unusable drops the connection. */
  async function call(conn: Connection, type: Cmd, body: Record<string, unknown>, payload = 0): Promise<LibResponse> {
    try {
      // Multi-credit requests (MS-SMB2 3.2.4.1.5): one credit per 64 KiB of payload.
      const creditCharge = Math.max(1, Math.ceil(payload / IO_CHUNK));
      return await conn.transport.request({ type, sessionId: conn.sessionId, treeId: conn.treeId, creditCharge }, body);
    } catch (err) {
      const status = statusOf(err);
      if (status !== undefined && SESSION_GONE.has(status)) conn.transport.fail(new Error(`session lost (${ntStatusName(status)})`));
      throw err;
    }
  }

  async function create(conn: Connection, path: string, access: number, disposition: number, createOptions: number): Promise<Handle> {
    const name = Buffer.from(smbPath(path), "utf16le");
    const r = await call(conn, Cmd.Create, {
      buffer: name,
      desiredAccess: access,
      fileAttributes: 0,
      shareAccess: 0x7, // read, write and delete: never lock others out
      createDisposition: disposition,
      createOptions,
      nameOffset: 0x78,
      createContextsOffset: 0,
    });
    const attributes = Number(r.body.fileAttributes ?? 0);
    const mtime100ns = big(r.body.lastWriteTime);
    return {
      conn,
      fileId: r.body.fileId as string,
      stat: {
        size: Number(big(r.body.endOfFile)),
        mtimeMs: filetimeMs(mtime100ns),
        mtime100ns,
        attributes,
        isDirectory: (attributes & ATTR_DIRECTORY) !== 0,
        isReparsePoint: (attributes & ATTR_REPARSE_POINT) !== 0,
      },
    };
  }

  async function closeHandle(handle: Handle): Promise<void> {
    await call(handle.conn, Cmd.Close, { fileId: handle.fileId });
  }

  /** Closes without letting a failure hide the error that got us here. */
  async function closeQuietly(handle: Handle): Promise<void> {
    await closeHandle(handle).catch(() => undefined);
  }

  async function setInfo(handle: Handle, infoClass: number, buffer: Buffer): Promise<void> {
    await call(handle.conn, Cmd.SetInfo, { infoType: INFO_FILE, fileInfoClass: infoClass, fileId: handle.fileId, buffer });
  }

  /** Marks an open handle for deletion (it goes on close); reports DIRECTORY_NOT_EMPTY at once, unlike delete-on-close. */
  async function dispose(handle: Handle): Promise<void> {
    await setInfo(handle, FILE_DISPOSITION_INFORMATION, Buffer.from([1]));
  }

  /** A rename or a hard link of an open file: both take the same structure, under their own class. */
  async function nameHandle(handle: Handle, infoClass: typeof FILE_RENAME_INFORMATION | typeof FILE_LINK_INFORMATION, to: string, replace: boolean): Promise<void> {
    const name = Buffer.from(smbPath(to), "utf16le");
    // FILE_RENAME_INFORMATION_TYPE_2 / FILE_LINK_INFORMATION_TYPE_2: ReplaceIfExists(1) Reserved(7) RootDirectory(8) FileNameLength(4) FileName.
    const info = Buffer.alloc(20 + name.length);
    info.writeUInt8(replace ? 1 : 0, 0);
    info.writeUInt32LE(name.length, 16);
    name.copy(info, 20);
    await setInfo(handle, infoClass, info);
  }

  /** Reads exactly `length` bytes at `offset` (several requests if the server answers short); fewer only at the end of the file. */
  async function readAt(handle: Handle, offset: number, length: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < length) {
      let data: Buffer;
      try {
        const r = await call(handle.conn, Cmd.Read, { fileId: handle.fileId, length: length - got, offset: BigInt(offset + got), minimumCount: 0 }, length - got);
        data = (r.body.buffer as Buffer | undefined) ?? Buffer.alloc(0);
      } catch (err) {
        if (statusOf(err) === S.END_OF_FILE) break;
        throw err;
      }
      if (data.length === 0) break;
      parts.push(data);
      got += data.length;
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  async function writeAt(handle: Handle, offset: number, data: Buffer): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const r = await call(handle.conn, Cmd.Write, { fileId: handle.fileId, buffer: data.subarray(done), offset: BigInt(offset + done) }, data.length - done);
      const count = Number(r.body.count ?? 0);
      if (count <= 0) throw new SmbError(`${label}: the server accepted no bytes of a write`, { retryable: true });
      done += count;
    }
  }

  async function withHandle<T>(path: string, access: number, createOptions: number, what: string, fn: (handle: Handle) => Promise<T>): Promise<T> {
    const conn = await connection();
    let handle: Handle;
    try {
      handle = await create(conn, path, access, OPEN, createOptions);
    } catch (err) {
      throw describe(err, what);
    }
    try {
      const result = await fn(handle);
      await closeHandle(handle);
      return result;
    } catch (err) {
      await closeQuietly(handle);
      throw describe(err, what);
    }
  }

  const client: SmbClient = {
    label,

    async stat(path) {
      return withHandle(path, READ_ATTRIBUTES | SYNCHRONIZE, 0, path === "" ? "share root" : path, async (h) => h.stat);
    },

    async readdir(path, signal) {
      const what = path === "" ? "listing" : `${path}/: listing`;
      return withHandle(path, LIST_DIRECTORY | READ_ATTRIBUTES | SYNCHRONIZE, FILE_DIRECTORY_FILE, what, async (handle) => {
        const entries: SmbDirEntry[] = [];
        // One QUERY_DIRECTORY returns one 64 KiB page (about 370 entries); ask again until STATUS_NO_MORE_FILES.
        for (let first = true; ; first = false) {
          signal?.throwIfAborted();
          let page: LibResponse;
          try {
            page = await call(handle.conn, Cmd.QueryDirectory, {
              fileId: handle.fileId,
              fileInformationClass: FILE_ID_BOTH_DIRECTORY_INFORMATION,
              flags: first ? 0x1 : 0, // RESTART_SCANS on the first page
              outputBufferLength: 0x10000,
              buffer: Buffer.from("*", "utf16le"),
            });
          } catch (err) {
            if (statusOf(err) === S.NO_MORE_FILES) break;
            throw err;
          }
          const buffer = (page.body.buffer as Buffer | undefined) ?? Buffer.alloc(0);
          if (buffer.length === 0) break;
          entries.push(...parseDirectoryPage(buffer));
        }
        return entries;
      });
    },

    async openRead(path, readOptions = {}) {
      const offset = readOptions.offset ?? 0;
      const signal = readOptions.signal;
      const conn = await connection();
      let handle: Handle;
      try {
        handle = await create(conn, path, READ_DATA | READ_ATTRIBUTES | SYNCHRONIZE, OPEN, FILE_NON_DIRECTORY_FILE);
      } catch (err) {
        throw describe(err, path);
      }
      const size = handle.stat.size;
      const opened = handle;
      let closing: Promise<void> | undefined;
      const close = () => {
        closing ??= closeQuietly(opened);
        return closing;
      };
      async function* body(): AsyncGenerator<Buffer> {
        const window: { at: number; length: number; data: Promise<Buffer> }[] = [];
        let next = offset;
        const fill = () => {
          while (window.length < IO_WINDOW && next < size) {
            const length = Math.min(opened.conn.ioChunk, size - next);
            const data = readAt(opened, next, length);
            data.catch(() => undefined); // awaited in order below; a failure is reported there
            window.push({ at: next, length, data });
            next += length;
          }
        };
        try {
          fill();
          for (let part = window.shift(); part !== undefined; part = window.shift()) {
            if (signal?.aborted) throw new SmbError(`${label}: ${path}: aborted`, { cause: signal.reason, retryable: false });
            const data = await part.data;
            if (data.length < part.length) {
              throw new SmbError(`${label}: ${path}: the file ended at ${part.at + data.length} bytes, not ${size} as it was when opened (changed during the read?)`, {
                status: S.END_OF_FILE,
              });
            }
            fill();
            yield data;
          }
        } catch (err) {
          throw describe(err, `${path}: read`);
        } finally {
          await close();
        }
      }
      if (signal?.aborted) {
        await close();
        throw new SmbError(`${label}: ${path}: aborted`, { cause: signal.reason, retryable: false });
      }
      return { size, stat: opened.stat, body: body(), close };
    },

    async readSmall(path, limit) {
      let opened: SmbOpenedRead;
      try {
        opened = await client.openRead(path);
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }
      if (opened.size > limit) {
        await opened.close();
        throw new SmbError(`${label}: ${path}: ${opened.size} bytes, more than the limit of ${limit}`, { retryable: false });
      }
      const chunks: Buffer[] = [];
      for await (const chunk of opened.body) chunks.push(chunk);
      return Buffer.concat(chunks);
    },

    async writeFile(path, data, writeOptions = {}) {
      const signal = writeOptions.signal;
      const slash = path.lastIndexOf("/");
      const dir = slash < 0 ? "" : path.slice(0, slash);
      const temp = `${dir === "" ? "" : `${dir}/`}.${path.slice(slash + 1).slice(0, 64)}.${randomBytes(6).toString("hex")}.um-part`;
      const conn = await connection();
      let handle: Handle;
      try {
        handle = await create(conn, temp, WRITE_DATA | READ_ATTRIBUTES | WRITE_ATTRIBUTES | DELETE | SYNCHRONIZE, CREATE, FILE_NON_DIRECTORY_FILE);
      } catch (err) {
        throw describe(err, `${path}: creating ${temp}`);
      }
      let written = 0;
      try {
        const inFlight: Promise<void>[] = [];
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        const send = async (chunk: Buffer) => {
          const at = written;
          written += chunk.length;
          const write = writeAt(handle, at, chunk);
          write.catch(() => undefined);
          inFlight.push(write);
          if (inFlight.length >= IO_WINDOW) await inFlight.shift();
        };
        const source: AsyncIterable<Uint8Array> | Uint8Array[] = data instanceof Uint8Array ? [data] : data;
        for await (const piece of source) {
          signal?.throwIfAborted();
          pending.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
          pendingBytes += piece.byteLength;
          while (pendingBytes >= conn.ioChunk) {
            const all = Buffer.concat(pending);
            await send(all.subarray(0, conn.ioChunk));
            const rest = all.subarray(conn.ioChunk);
            pending = rest.length > 0 ? [rest] : [];
            pendingBytes = rest.length;
          }
        }
        if (pendingBytes > 0) await send(Buffer.concat(pending));
        await Promise.all(inFlight);
        // The server writes its cache to disk before the file gets its name; the rename goes through the
        // handle still open for writing (it has DELETE access), which saves an open and a close per file.
        await call(conn, Cmd.Flush, { fileId: handle.fileId });
        await nameHandle(handle, FILE_RENAME_INFORMATION, writeOptions.finalName?.() ?? path, true);
      } catch (err) {
        await dispose(handle).catch(() => undefined);
        await closeQuietly(handle);
        throw describe(err, `${path}: writing ${temp}`);
      }
      await closeQuietly(handle);
      return written;
    },

    async rename(from, to, renameOptions = {}) {
      await withHandle(from, DELETE | READ_ATTRIBUTES | SYNCHRONIZE, 0, `renaming ${from} to ${to}`, (h) => nameHandle(h, FILE_RENAME_INFORMATION, to, renameOptions.replace === true));
    },

    async link(from, to, linkOptions = {}) {
      await withHandle(from, READ_ATTRIBUTES | SYNCHRONIZE, FILE_NON_DIRECTORY_FILE, `linking ${from} as ${to}`, (h) => nameHandle(h, FILE_LINK_INFORMATION, to, linkOptions.replace === true));
    },

    async freeBytes() {
      return withHandle("", READ_ATTRIBUTES | SYNCHRONIZE, FILE_DIRECTORY_FILE, "free space", async (h) => {
        const r = await call(h.conn, Cmd.QueryInfo, { infoType: INFO_FILESYSTEM, fileInfoClass: FILE_FS_FULL_SIZE_INFORMATION, outputBufferLength: 32, fileId: h.fileId });
        const info = (r.body.buffer as Buffer | undefined) ?? Buffer.alloc(0);
        if (info.length < 32) throw new SmbError(`${label}: free space: a reply of ${info.length} bytes, not 32`, { retryable: false });
        const available = info.readBigUInt64LE(8);
        const unit = BigInt(info.readUInt32LE(24)) * BigInt(info.readUInt32LE(28));
        return Number(available * unit);
      });
    },

    async mkdir(path) {
      const conn = await connection();
      const parts = path.split("/").filter((s) => s !== "");
      for (let i = 1; i <= parts.length; i++) {
        const sub = parts.slice(0, i).join("/");
        try {
          const handle = await create(conn, sub, READ_ATTRIBUTES | SYNCHRONIZE, OPEN_IF, FILE_DIRECTORY_FILE);
          await closeHandle(handle);
        } catch (err) {
          const status = statusOf(err);
          if (status === S.NOT_A_DIRECTORY || status === S.NAME_COLLISION) {
            throw new SmbError(`${label}: ${sub}: exists and is not a folder (${ntStatusName(status)})`, { status, retryable: false });
          }
          throw describe(err, `creating folder ${sub}`);
        }
      }
    },

    async remove(path) {
      await withHandle(path, DELETE | SYNCHRONIZE, FILE_NON_DIRECTORY_FILE, `deleting ${path}`, dispose);
    },

    async rmdir(path) {
      await withHandle(path, DELETE | SYNCHRONIZE, FILE_DIRECTORY_FILE, `deleting folder ${path}`, dispose);
    },

    async close() {
      const was = current;
      current = undefined;
      const conn = await was?.catch(() => undefined);
      conn?.transport.fail(new Error("closed"));
    },
  };
  return client;
}
