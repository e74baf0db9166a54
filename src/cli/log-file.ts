// The log file: whole lines appended synchronously, rotated by size and age to dated names, following a file moved or truncated under it.
//
// Why our own code and not pino-roll or rotating-file-stream: both write asynchronously (pino-roll in a
// worker thread), so a crash loses the last lines, and both count only their own process's bytes and
// rename without checking who else holds the file, so processes sharing a log rotate it under each
// other. What is needed here is small: a synchronous append, a stat now and then, and one rename.
//
// Rotation renames FILE to FILE.<UTC time>-<pid> (20250301T142501.123Z-4242), never FILE.1 -> FILE.2:
// one atomic rename per rotation, a name that is unique per host, and rotated files that never change
// name, so a log shipper that has read one is done with it and two writers racing to rotate cannot
// overwrite each other's file (a numbered chain of renames can, and a crash half-way leaves it torn).
// The names sort by time, oldest first.
//
// What writers sharing one FILE get (a scheduled job and a daemon): every line is one write(2) on a
// descriptor opened with O_APPEND, so lines are never split or interleaved on a local file system (NFS
// and SMB do not promise this for appends from several hosts). Nothing written is lost by a rotation:
// a writer holding the renamed file keeps appending there until its next check (at most
// `checkIntervalMs` later, or at once when its count says the file is full), when it sees that FILE is
// another file and opens that. Two writers deciding to rotate at the same moment make, at worst, one
// extra small rotated file. Every writer prunes with its own settings, so give them the same ones.
// Under logrotate (`maxBytes` and `maxAgeMs` undefined): `copytruncate` needs nothing (O_APPEND writes
// at the new end; lines between its copy and its truncate are lost, as with any program), and
// `create` (FILE moved away, a new one made) is followed at the next check, by its inode, without a
// signal: no SIGHUP handler is installed, so a job in a terminal still ends on a hangup. Lines
// written before the check land in the moved file; use `delaycompress` so that file is still there.
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fsError } from "../core/errors.js";

export interface LogFileOptions {
  /** Rotate before a line would take FILE past this many bytes; undefined: never by size. */
  maxBytes?: number | undefined;
  /** Rotated files kept, newest first (default 5). With 0, lines another writer appends before its next check go with the deleted file. */
  keep?: number | undefined;
  /** Rotated files whose last line is older than this are deleted, and FILE is rotated once its first line is older than this; undefined: no age limit. */
  maxAgeMs?: number | undefined;
  /** How often (ms) a writer checks that FILE is still the file it holds and how big it really is (default 1000; 0 checks before every line). */
  checkIntervalMs?: number | undefined;
  /** Told once per kind of failure (a write, a rotation, a prune); the default prints one line on stderr. */
  onProblem?: ((message: string) => void) | undefined;
  /** The clock, for tests. */
  now?: (() => number) | undefined;
}

/** An open log file: pino's destination (it calls `write` once per record, with the whole line). */
export interface LogFile {
  readonly path: string;
  /** Appends one line (ending in "\n"), rotating first when due. Never throws: a failure goes to `onProblem` and the line is lost. */
  write(line: string): void;
  /** Nothing to flush: every write is synchronous. Present for pino's `logger.flush()`. */
  flushSync(): void;
  /** Closes the descriptor; later writes are dropped. Never throws. */
  close(): void;
}

const DEFAULT_KEEP = 5;
const DEFAULT_CHECK_MS = 1000;
/** Pruning by age also runs this often in a long-lived writer (it always runs at open and after a rotation). */
const PRUNE_EVERY_MS = 3_600_000;
/** After a rotation failed (a permission, a busy file), the next attempt waits this long; lines keep going to FILE. */
const ROTATE_RETRY_MS = 60_000;
const ROTATED_SUFFIX = /^\.(\d{8}T\d{6}\.\d{3}Z)-(\d+)$/;

/** The rotated files of `path`, oldest first (by the time in their names). Never throws: an unreadable folder has none. */
export function rotatedLogFiles(path: string): string[] {
  const dir = dirname(path);
  const base = basename(path);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(base) && ROTATED_SUFFIX.test(n.slice(base.length)))
    .sort()
    .map((n) => join(dir, n));
}

/** FILE.20250301T142501.123Z-4242: UTC, compact ISO 8601, sortable. */
function rotatedName(path: string, ms: number): string {
  const iso = new Date(ms).toISOString(); // 2025-03-01T14:25:01.123Z
  return `${path}.${iso.replace(/[-:]/g, "")}-${process.pid}`;
}

/** The "time" of the first line of the file open on `fd` (pino's epoch milliseconds), or undefined. */
function firstLineTime(fd: number): number | undefined {
  const buffer = Buffer.alloc(1024);
  let length: number;
  try {
    length = readSync(fd, buffer, 0, buffer.length, 0);
  } catch {
    return undefined;
  }
  const first = buffer.subarray(0, length).toString("utf8").split("\n")[0] ?? "";
  const match = /"time":(\d{10,})/.exec(first);
  return match ? Number(match[1]) : undefined;
}

/**
 * Opens `path` for appending (creating it and its folder), prunes old rotated files, and returns the
 * writer. Throws NotFoundError or IoError (from fsError) naming the log file when it cannot be opened.
 */
export function openLogFile(path: string, options: LogFileOptions = {}): LogFile {
  const keep = options.keep ?? DEFAULT_KEEP;
  const checkMs = options.checkIntervalMs ?? DEFAULT_CHECK_MS;
  const now = options.now ?? Date.now;
  const reported = new Set<string>();
  const problem = (kind: string, message: string) => {
    if (reported.has(kind)) return;
    reported.add(kind);
    (options.onProblem ?? ((m: string) => process.stderr.write(`update-mirror: ${m}\n`)))(message);
  };
  const label = `log file ${path}`;
  const reason = (err: unknown) => fsError(err, label).message;

  // Opened for reading too ("a+") only with an age limit, to read the first line's time; writes always go to the end (O_APPEND).
  const open = (): number => {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch {
      // The open below says what is wrong (a file where a folder should be, a permission).
    }
    return openSync(path, options.maxAgeMs === undefined ? "a" : "a+");
  };
  let fd: number | undefined;
  try {
    fd = open();
  } catch (err) {
    throw fsError(err, label);
  }
  /** Bytes in FILE as far as we know: exact at each check, plus our own writes since. */
  let size = fstatSync(fd).size;
  /** When FILE's first line was written (for the age trigger); undefined while FILE is empty or has no time. */
  const startOf = (file: number, bytes: number) => (options.maxAgeMs === undefined || bytes === 0 ? undefined : firstLineTime(file));
  let startedMs = startOf(fd, size);
  let lastCheck = now();
  let lastPrune = Number.NEGATIVE_INFINITY;
  let rotateAfter = Number.NEGATIVE_INFINITY;
  let lastStamp = 0;
  let closed = false;

  /** Swaps in a fresh descriptor for FILE (the old one closed only once the new one is open). */
  const reopen = () => {
    let next: number;
    try {
      next = open();
    } catch (err) {
      problem("open", `${reason(err)}; log lines go to the file it was until it can be opened again`);
      return;
    }
    if (fd !== undefined) closeQuietly(fd);
    fd = next;
    size = fstatSync(fd).size;
    startedMs = startOf(fd, size);
    reported.delete("open");
  };

  /** Whether FILE is still the file on `fd`; if not (moved, deleted, rotated by another writer) it is reopened. Refreshes `size` either way. */
  const check = (at: number) => {
    lastCheck = at;
    if (fd === undefined) return reopen();
    let own: ReturnType<typeof fstatSync>;
    try {
      own = fstatSync(fd);
    } catch {
      return reopen();
    }
    let named: ReturnType<typeof statSync> | undefined;
    try {
      named = statSync(path);
    } catch {
      named = undefined;
    }
    if (named === undefined || named.ino !== own.ino || named.dev !== own.dev) return reopen();
    // A truncation (logrotate's copytruncate) makes it smaller; other writers' lines larger.
    const truncated = own.size < size;
    size = own.size;
    if (truncated) startedMs = startOf(fd, size);
  };

  const prune = (at: number) => {
    lastPrune = at;
    const files = rotatedLogFiles(path).reverse();
    files.forEach((file, i) => {
      try {
        if (i >= keep || (options.maxAgeMs !== undefined && statSync(file).mtimeMs < at - options.maxAgeMs)) unlinkSync(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") problem("prune", `${fsError(err, `rotated log file ${file}`).message}: cannot delete it; it stays`);
      }
    });
  };

  const due = (at: number, bytes: number): boolean =>
    size > 0 &&
    ((options.maxBytes !== undefined && size + bytes > options.maxBytes) || (options.maxAgeMs !== undefined && startedMs !== undefined && at - startedMs >= options.maxAgeMs));

  const rotate = (at: number, bytes: number) => {
    // Only the file we hold is rotated: if FILE is another one now, another writer rotated it.
    check(at);
    if (!due(at, bytes) || fd === undefined) return;
    const stamp = Math.max(at, lastStamp + 1);
    lastStamp = stamp;
    const target = rotatedName(path, stamp);
    try {
      renameSync(path, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return reopen();
      rotateAfter = at + ROTATE_RETRY_MS;
      problem("rotate", `${fsError(err, `${label}: cannot rotate it to ${target}`).message}; lines go on being appended to it`);
      return;
    }
    reported.delete("rotate");
    reopen();
    prune(at);
  };

  if (size > 0 && due(lastCheck, 0)) rotate(lastCheck, 0);
  prune(lastCheck);

  return {
    path,
    write(line) {
      if (closed) return;
      const bytes = Buffer.byteLength(line);
      const at = now();
      if (fd === undefined || at - lastCheck >= checkMs) check(at);
      if (at >= rotateAfter && due(at, bytes)) rotate(at, bytes);
      if (at - lastPrune >= PRUNE_EVERY_MS && options.maxAgeMs !== undefined) prune(at);
      if (fd === undefined) return;
      try {
        writeWhole(fd, line, bytes);
        reported.delete("write");
      } catch (err) {
        problem("write", `${reason(err)}; log lines are lost until it can be written again`);
        return;
      }
      if (startedMs === undefined && size === 0) startedMs = at;
      size += bytes;
    },
    flushSync() {},
    close() {
      closed = true;
      if (fd !== undefined) closeQuietly(fd);
      fd = undefined;
    },
  };
}

/** One write(2) for the line; only if the kernel takes less (a full disk, a signal) does the rest follow in more. */
function writeWhole(fd: number, line: string, bytes: number): void {
  const written = writeSync(fd, line);
  if (written === bytes) return;
  const buffer = Buffer.from(line);
  for (let offset = written; offset < bytes; ) offset += writeSync(fd, buffer, offset, bytes - offset);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed or gone: nothing to do.
  }
}
