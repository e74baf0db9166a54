// SMB2 protocol vocabulary for our client: NT statuses and the typed SmbError, commands, flags, directory pages, paths.
import { SourceError } from "../core/errors.js";

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

export const S = {
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
export const SESSION_GONE = new Set([0xc00000c9, 0xc0000203, 0xc000035c, 0xc000020c, 0xc0000008]);
/** Statuses worth another try later (server busy, sharing conflicts with a writer, timeouts). */
export const TRANSIENT = new Set([0xc0000043, 0xc0000056, 0xc000009a, 0xc0000205, 0xc00000b5, 0xc000020c, 0xc00000c9, 0xc0000203, 0xc000035c, 0xc0000008]);

export function ntStatusName(status: number): string {
  return STATUS_NAMES.get(status) ?? `NTSTATUS 0x${status.toString(16).padStart(8, "0").toUpperCase()}`;
}

/** SMB2 commands (MS-SMB2 2.2.1.2). */
export const Cmd = { Negotiate: 0, SessionSetup: 1, TreeConnect: 3, Create: 5, Close: 6, Flush: 7, Read: 8, Write: 9, QueryDirectory: 14, QueryInfo: 16, SetInfo: 17 } as const;
export type Cmd = (typeof Cmd)[keyof typeof Cmd];

// Access masks, create dispositions and options (MS-SMB2 2.2.13).
export const READ_DATA = 0x1;
export const WRITE_DATA = 0x2;
export const LIST_DIRECTORY = 0x1;
export const READ_ATTRIBUTES = 0x80;
export const WRITE_ATTRIBUTES = 0x100;
export const DELETE = 0x10000;
export const SYNCHRONIZE = 0x100000;
export const OPEN = 1;
export const CREATE = 2;
export const OPEN_IF = 3;
export const FILE_DIRECTORY_FILE = 0x1;
export const FILE_NON_DIRECTORY_FILE = 0x40;
export const ATTR_DIRECTORY = 0x10;
export const ATTR_REPARSE_POINT = 0x400;
export const INFO_FILE = 1;
export const INFO_FILESYSTEM = 2;
export const FILE_RENAME_INFORMATION = 10;
export const FILE_LINK_INFORMATION = 11;
export const FILE_DISPOSITION_INFORMATION = 13;
export const FILE_ID_BOTH_DIRECTORY_INFORMATION = 37;
/** FileFsFullSizeInformation (MS-FSCC 2.5.4): allocation units total and available, sectors per unit, bytes per sector. */
export const FILE_FS_FULL_SIZE_INFORMATION = 7;
export const SIGNING_REQUIRED = 0x2;
export const SESSION_ENCRYPT_DATA = 0x4;
export const SHARE_ENCRYPT_DATA = 0x8000;
/** One READ or WRITE without multi-credit (SMB 2.0.2, or a server without large MTU): 64 KiB. */
export const IO_CHUNK = 0x10000;
/** One READ or WRITE with multi-credit (SMB 2.1 large MTU): 1 MiB, charged 16 credits. */
export const IO_CHUNK_LARGE = 0x100000;
export const CAP_LARGE_MTU = 0x4;
/** READs or WRITEs kept in flight per file; Samba answers them in parallel. */
export const IO_WINDOW = 4;
/** 1601-01-01 to 1970-01-01 in 100 ns units. */
export const FILETIME_EPOCH = 116444736000000000n;

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
export function securityHint(label: string, what: string): string {
  return (
    `${label}: ${what}. This tool's SMB client speaks SMB 2.0.2/2.1 without signing or encryption, so it cannot use this server. ` +
    "Mount the share instead (Linux: mount -t cifs //HOST/SHARE /mnt/point -o username=USER,credentials=FILE; " +
    "Windows: the UNC path \\\\HOST\\SHARE) and give the mounted folder as the source"
  );
}

/** The NT status of a rejected node-smb2 request, or undefined for any other failure. */
export function statusOf(err: unknown): number | undefined {
  const status = (err as { header?: { status?: unknown } } | undefined)?.header?.status;
  return typeof status === "number" ? status : undefined;
}

/** FILETIME (100 ns since 1601) to whole ms since 1970. */
export function filetimeMs(ft: bigint): number {
  return Number((ft - FILETIME_EPOCH) / 10000n);
}

export function big(value: unknown): bigint {
  return typeof value === "bigint" ? value : BigInt(Number(value ?? 0));
}

/** A share-relative path ("a/b/c", "" for the root) as SMB wants it: backslashes, no leading separator. */
export function smbPath(path: string): string {
  return path.split("/").filter((s) => s !== "").join("\\");
}

/** Parses one FILE_ID_BOTH_DIR_INFORMATION page (MS-FSCC 2.4.17). */
export function parseDirectoryPage(buffer: Buffer): SmbDirEntry[] {
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
