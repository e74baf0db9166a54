// Our SMB2 client: node-smb2's framing and NTLMv2 under one connection of ours, with its gaps closed (interim replies, paged listings, atomic replace, typed errors).
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { NotFoundError, SourceError, UpdateMirrorError } from "../core/errors.js";

// Why node-smb2 (pinned at 1.3.5): it is the only npm SMB client that speaks NTLMv2, which Samba and Windows
// require by default. We use only its transport (NetBIOS framing, message ids, packet (de)serialisation) and
// its NTLM message encoders; every file operation is issued and parsed here, because its own helpers corrupt
// reads on STATUS_PENDING, stop listings after one page, cannot replace on rename and print to stdout.
// Measured against Samba 4.17: /work/shared/research/stack-services.md §1.

type ClientModule = typeof import("node-smb2/dist/client/Client.js");
type NtlmModule = typeof import("node-smb2/dist/protocol/ntlm/util.js");
type LibClient = InstanceType<ClientModule["default"]>;
type LibRequest = Parameters<LibClient["send"]>[0];
type LibResponse = Awaited<ReturnType<LibClient["send"]>>;

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

/** What a CREATE (open) or a directory listing says about one file or folder. */
export interface SmbStat {
  size: number;
  /** Last write time in ms since the epoch (whole ms). */
  mtimeMs: number;
  /** The raw FILETIME (100 ns units since 1601) of the last write, for validators. */
  mtime100ns: bigint;
  isDirectory: boolean;
  /** A symbolic link, junction or other reparse point (Windows servers report these; Samba follows links instead). */
  isReparsePoint: boolean;
  attributes: number;
}

export interface SmbDirEntry extends SmbStat {
  name: string;
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

/** NT status codes we name; others are printed in hex. */
const STATUS_NAMES = new Map<number, string>([
  [0x00000000, "STATUS_SUCCESS"],
  [0x00000103, "STATUS_PENDING"],
  [0x80000005, "STATUS_BUFFER_OVERFLOW"],
  [0x80000006, "STATUS_NO_MORE_FILES"],
  [0xc0000008, "STATUS_INVALID_HANDLE"],
  [0xc000000d, "STATUS_INVALID_PARAMETER"],
  [0xc0000010, "STATUS_INVALID_DEVICE_REQUEST"],
  [0xc0000011, "STATUS_END_OF_FILE"],
  [0xc0000016, "STATUS_MORE_PROCESSING_REQUIRED"],
  [0xc0000022, "STATUS_ACCESS_DENIED"],
  [0xc0000033, "STATUS_OBJECT_NAME_INVALID"],
  [0xc0000034, "STATUS_OBJECT_NAME_NOT_FOUND"],
  [0xc0000035, "STATUS_OBJECT_NAME_COLLISION"],
  [0xc0000039, "STATUS_OBJECT_PATH_INVALID"],
  [0xc000003a, "STATUS_OBJECT_PATH_NOT_FOUND"],
  [0xc000003b, "STATUS_OBJECT_PATH_SYNTAX_BAD"],
  [0xc0000043, "STATUS_SHARING_VIOLATION"],
  [0xc0000056, "STATUS_DELETE_PENDING"],
  [0xc0000061, "STATUS_PRIVILEGE_NOT_HELD"],
  [0xc0000064, "STATUS_NO_SUCH_USER"],
  [0xc000006d, "STATUS_LOGON_FAILURE"],
  [0xc000006e, "STATUS_ACCOUNT_RESTRICTION"],
  [0xc0000071, "STATUS_PASSWORD_EXPIRED"],
  [0xc0000072, "STATUS_ACCOUNT_DISABLED"],
  [0xc000007f, "STATUS_DISK_FULL"],
  [0xc000009a, "STATUS_INSUFFICIENT_RESOURCES"],
  [0xc00000a2, "STATUS_MEDIA_WRITE_PROTECTED"],
  [0xc00000b5, "STATUS_IO_TIMEOUT"],
  [0xc00000ba, "STATUS_FILE_IS_A_DIRECTORY"],
  [0xc00000bb, "STATUS_NOT_SUPPORTED"],
  [0xc00000c9, "STATUS_NETWORK_NAME_DELETED"],
  [0xc00000cc, "STATUS_BAD_NETWORK_NAME"],
  [0xc0000101, "STATUS_DIRECTORY_NOT_EMPTY"],
  [0xc0000103, "STATUS_NOT_A_DIRECTORY"],
  [0xc0000120, "STATUS_CANCELLED"],
  [0xc0000128, "STATUS_FILE_CLOSED"],
  [0xc000015b, "STATUS_LOGON_TYPE_NOT_GRANTED"],
  [0xc0000203, "STATUS_USER_SESSION_DELETED"],
  [0xc0000205, "STATUS_INSUFF_SERVER_RESOURCES"],
  [0xc000020c, "STATUS_CONNECTION_DISCONNECTED"],
  [0xc0000224, "STATUS_PASSWORD_MUST_CHANGE"],
  [0xc0000234, "STATUS_ACCOUNT_LOCKED_OUT"],
  [0xc0000257, "STATUS_PATH_NOT_COVERED"],
  [0xc000035c, "STATUS_NETWORK_SESSION_EXPIRED"],
]);

const S = {
  SUCCESS: 0,
  PENDING: 0x103,
  NO_MORE_FILES: 0x80000006,
  END_OF_FILE: 0xc0000011,
  MORE_PROCESSING_REQUIRED: 0xc0000016,
  ACCESS_DENIED: 0xc0000022,
  NAME_NOT_FOUND: 0xc0000034,
  NAME_COLLISION: 0xc0000035,
  PATH_NOT_FOUND: 0xc000003a,
  LOGON_FAILURE: 0xc000006d,
  NOT_SUPPORTED: 0xc00000bb,
  BAD_NETWORK_NAME: 0xc00000cc,
  NOT_A_DIRECTORY: 0xc0000103,
} as const;

/** Statuses after which the session or tree is gone: the connection is dropped and the next call reconnects. */
const SESSION_GONE = new Set([0xc00000c9, 0xc0000203, 0xc000035c, 0xc000020c, 0xc0000008]);
/** Statuses worth another try later (server busy, sharing conflicts with a writer, timeouts). */
const TRANSIENT = new Set([0xc0000043, 0xc0000056, 0xc000009a, 0xc0000205, 0xc00000b5, 0xc000020c, 0xc00000c9, 0xc0000203, 0xc000035c, 0xc0000008]);

export function ntStatusName(status: number): string {
  return STATUS_NAMES.get(status) ?? `NTSTATUS 0x${status.toString(16).padStart(8, "0").toUpperCase()}`;
}

/** SMB2 commands (MS-SMB2 2.2.1.2). */
const Cmd = { Negotiate: 0, SessionSetup: 1, TreeConnect: 3, Create: 5, Close: 6, Flush: 7, Read: 8, Write: 9, QueryDirectory: 14, SetInfo: 17 } as const;
type Cmd = (typeof Cmd)[keyof typeof Cmd];

// Access masks, create dispositions and options (MS-SMB2 2.2.13).
const READ_DATA = 0x1;
const WRITE_DATA = 0x2;
const LIST_DIRECTORY = 0x1;
const READ_ATTRIBUTES = 0x80;
const WRITE_ATTRIBUTES = 0x100;
const DELETE = 0x10000;
const SYNCHRONIZE = 0x100000;
const OPEN = 1;
const CREATE = 2;
const OPEN_IF = 3;
const FILE_DIRECTORY_FILE = 0x1;
const FILE_NON_DIRECTORY_FILE = 0x40;
const ATTR_DIRECTORY = 0x10;
const ATTR_REPARSE_POINT = 0x400;
const INFO_FILE = 1;
const FILE_RENAME_INFORMATION = 10;
const FILE_DISPOSITION_INFORMATION = 13;
const FILE_ID_BOTH_DIRECTORY_INFORMATION = 37;
const SIGNING_REQUIRED = 0x2;
const SESSION_ENCRYPT_DATA = 0x4;
const SHARE_ENCRYPT_DATA = 0x8000;
/** One READ or WRITE without multi-credit (SMB 2.0.2, or a server without large MTU): 64 KiB. */
const IO_CHUNK = 0x10000;
/** One READ or WRITE with multi-credit (SMB 2.1 large MTU): 1 MiB, charged 16 credits. */
const IO_CHUNK_LARGE = 0x100000;
const CAP_LARGE_MTU = 0x4;
/** READs or WRITEs kept in flight per file; Samba answers them in parallel. */
const IO_WINDOW = 4;
/** 1601-01-01 to 1970-01-01 in 100 ns units. */
const FILETIME_EPOCH = 116444736000000000n;

/**
 * An SMB failure: the NT status (when the server answered) by name in the message, the operation and
 * path, never a password. Retryable for network trouble and transient statuses. A Store translates
 * these to its own errors by `status`; for a Source they are already what the engine expects.
 */
export class SmbError extends SourceError {
  /** The NT status of the server's reply; undefined for a network failure or timeout. */
  readonly status: number | undefined;
  constructor(message: string, options: { status?: number; cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: options.cause, retryable: options.retryable ?? true });
    this.status = options.status;
  }
}

/** The server demands what this client cannot do (signing, SMB3 encryption, SMB3 only): a message that says what to do instead. */
function securityHint(label: string, what: string): string {
  return (
    `${label}: ${what}. This tool's SMB client speaks SMB 2.0.2/2.1 without signing or encryption, so it cannot use this server. ` +
    "Mount the share instead (Linux: mount -t cifs //HOST/SHARE /mnt/point -o username=USER,credentials=FILE; " +
    "Windows: the UNC path \\\\HOST\\SHARE) and give the mounted folder as the source"
  );
}

/** The NT status of a rejected node-smb2 request, or undefined for any other failure. */
function statusOf(err: unknown): number | undefined {
  const status = (err as { header?: { status?: unknown } } | undefined)?.header?.status;
  return typeof status === "number" ? status : undefined;
}

/** FILETIME (100 ns since 1601) to whole ms since 1970. */
function filetimeMs(ft: bigint): number {
  return Number((ft - FILETIME_EPOCH) / 10000n);
}

function big(value: unknown): bigint {
  return typeof value === "bigint" ? value : BigInt(Number(value ?? 0));
}

interface Lib {
  Transport: new (host: string, options: { port: number; connectTimeout: number; requestTimeout: number }) => Transport;
  ntlm: NtlmModule;
}

/** The transport of one connection: node-smb2's Client with its reply handling replaced. */
interface Transport extends LibClient {
  /** Rejects every request in flight with `err` and drops the socket. Idempotent. */
  fail(err: Error): void;
  failure: Error | undefined;
}

let loaded: Lib | undefined;
/** node-smb2 (and its moment-timezone) is loaded on first use, so runs without an SMB source do not pay for it. */
function lib(): Lib {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const Base = (require("node-smb2/dist/client/Client.js") as ClientModule).default;
  const ntlm = require("node-smb2/dist/protocol/ntlm/util.js") as NtlmModule;

  interface Pending {
    resolve: (response: LibResponse) => void;
    reject: (reason: unknown) => void;
    timer: NodeJS.Timeout;
    request: LibRequest;
  }

  class SmbTransport extends Base implements Transport {
    readonly pending = new Map<bigint, Pending>();
    failure: Error | undefined;

    constructor(host: string, options: { port: number; connectTimeout: number; requestTimeout: number }) {
      super(host, options);
      const parse = this.onData;
      // A reply the library cannot parse would otherwise throw out of the socket's data handler.
      this.onData = (buffer: Buffer) => {
        try {
          parse(buffer);
        } catch (err) {
          this.fail(new Error(`unreadable reply from the server: ${(err as Error).message}`, { cause: err }));
        }
      };
      // The library only console.error()s socket errors and never fails what is in flight.
      this.onError = (err: Error) => this.fail(err);
      this.onClose = () => this.fail(new Error("the server closed the connection"));
    }

    override async connect(): Promise<void> {
      try {
        await super.connect();
        // Requests are small and several are in flight: Nagle's algorithm would hold each behind the last one's ACK.
        this.socket.setNoDelay(true);
        // After the library's listeners are gone (a late error on a dropped socket) nothing may throw.
        this.socket.on("error", () => undefined);
      } finally {
        clearTimeout(this.connectTimeoutId);
      }
    }

    // A request charged N credits uses N message ids (MS-SMB2 3.2.4.1.5); the library advances by one.
    override createRequest(header: Parameters<LibClient["createRequest"]>[0] = {}, body: unknown = {}): LibRequest {
      const request = super.createRequest(header, body);
      const charge = header?.creditCharge ?? 1;
      if (charge > 1) this.nextMessageId += BigInt(charge - 1);
      return request;
    }

    override send(request: LibRequest): Promise<LibResponse> {
      if (this.failure) return Promise.reject(this.failure);
      if (!this.connected) return Promise.reject(new Error("not connected"));
      const id = request.header.messageId as bigint;
      return new Promise<LibResponse>((resolve, reject) => {
        const timer = setTimeout(() => this.fail(new Error(`no reply within ${this.requestTimeout} ms`)), this.requestTimeout);
        this.pending.set(id, { resolve, reject, timer, request });
        this.socket.write(request.serialize());
      });
    }

    override onResponse(response: LibResponse): void {
      const status = response.header.status as number;
      // STATUS_PENDING is an interim reply (the server went asynchronous, e.g. Samba's aio reads): the final
      // reply comes later under the same MessageId. The library resolved the request with the empty interim
      // body, which silently corrupted reads.
      if (status === S.PENDING) return;
      const id = response.header.messageId as bigint;
      const entry = this.pending.get(id);
      if (entry === undefined) return;
      this.pending.delete(id);
      clearTimeout(entry.timer);
      response.request = entry.request;
      if (status === S.SUCCESS || status === S.MORE_PROCESSING_REQUIRED) entry.resolve(response);
      else entry.reject(response);
    }

    fail(err: Error): void {
      this.failure ??= err;
      this.connected = false;
      for (const entry of this.pending.values()) {
        clearTimeout(entry.timer);
        entry.reject(this.failure);
      }
      this.pending.clear();
      this.socket?.destroy();
    }
  }

  loaded = { Transport: SmbTransport, ntlm };
  return loaded;
}

/** node-smb2 announces the NTLM version with console.log (stdout, which --json owns); the encoder is synchronous, so silence it just around the call. */
function quietly<T>(fn: () => T): T {
  const log = console.log;
  console.log = () => undefined;
  try {
    return fn();
  } finally {
    console.log = log;
  }
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
   * Writes `data` to a temporary name beside `path`, flushes and closes it, then renames it over `path`
   * (replacing atomically). Nothing is left under either name when it fails. Returns the bytes written.
   */
  writeFile(path: string, data: AsyncIterable<Uint8Array> | Uint8Array, signal?: AbortSignal): Promise<number>;
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

/** A share-relative path ("a/b/c", "" for the root) as SMB wants it: backslashes, no leading separator. */
function smbPath(path: string): string {
  return path.split("/").filter((s) => s !== "").join("\\");
}

/** Parses one FILE_ID_BOTH_DIR_INFORMATION page (MS-FSCC 2.4.17). */
function parseDirectoryPage(buffer: Buffer): SmbDirEntry[] {
  const entries: SmbDirEntry[] = [];
  let at = 0;
  while (at + 104 <= buffer.length) {
    const next = buffer.readUInt32LE(at);
    const mtime100ns = buffer.readBigUInt64LE(at + 24);
    const size = buffer.readBigUInt64LE(at + 40);
    const attributes = buffer.readUInt32LE(at + 56);
    const nameLength = buffer.readUInt32LE(at + 60);
    const name = buffer.toString("utf16le", at + 104, Math.min(buffer.length, at + 104 + nameLength));
    if (name !== "." && name !== "..") {
      entries.push({
        name,
        size: Number(size),
        mtimeMs: filetimeMs(mtime100ns),
        mtime100ns,
        attributes,
        isDirectory: (attributes & ATTR_DIRECTORY) !== 0,
        isReparsePoint: (attributes & ATTR_REPARSE_POINT) !== 0,
      });
    }
    if (next === 0) break;
    at += next;
  }
  return entries;
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

  async function renameHandle(handle: Handle, to: string, replace: boolean): Promise<void> {
    const name = Buffer.from(smbPath(to), "utf16le");
    // FILE_RENAME_INFORMATION_TYPE_2: ReplaceIfExists(1) Reserved(7) RootDirectory(8) FileNameLength(4) FileName.
    const info = Buffer.alloc(20 + name.length);
    info.writeUInt8(replace ? 1 : 0, 0);
    info.writeUInt32LE(name.length, 16);
    name.copy(info, 20);
    await setInfo(handle, FILE_RENAME_INFORMATION, info);
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

  async function removeTemp(conn: Connection, path: string): Promise<void> {
    try {
      const handle = await create(conn, path, DELETE | SYNCHRONIZE, OPEN, FILE_NON_DIRECTORY_FILE);
      await dispose(handle).finally(() => closeQuietly(handle));
    } catch {
      // Best effort: a leftover temp file carries a name nothing else uses.
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

    async writeFile(path, data, signal) {
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
        // The server writes its cache to disk before we make the file visible under its name.
        await call(conn, Cmd.Flush, { fileId: handle.fileId });
        await closeHandle(handle);
      } catch (err) {
        await dispose(handle).catch(() => undefined);
        await closeQuietly(handle);
        throw describe(err, `${path}: writing ${temp}`);
      }
      try {
        await client.rename(temp, path, { replace: true });
      } catch (err) {
        await removeTemp(conn, temp);
        throw err;
      }
      return written;
    },

    async rename(from, to, renameOptions = {}) {
      await withHandle(from, DELETE | READ_ATTRIBUTES | SYNCHRONIZE, 0, `renaming ${from} to ${to}`, (h) => renameHandle(h, to, renameOptions.replace === true));
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
