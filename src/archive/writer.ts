// Writing an archive (zip stored, or tar) from a stream of entries, optionally split into volumes, atomically.
import type { Stats } from "node:fs";
import { Readable, Writable } from "node:stream";
import { type Archiver, TarArchive, ZipArchive } from "archiver";
import { IntegrityError, InputRefusedError, UnsafePathError, UsageError } from "../core/errors.js";
import { pathSetConflicts } from "../core/safe-path.js";
import type { ArchiveFormat } from "./format.js";
import { archiveNameReason } from "./names.js";
import { VolumeWriter } from "./volume-writer.js";

/** Smallest accepted volume size: smaller volumes are a mistake (a unit forgotten), not a plan. */
export const MIN_SPLIT_SIZE = 64 * 1024;
// Bytes handed to the archiver but not yet written out; reading ahead further only costs memory.
const BUFFER_BUDGET = 16 * 1024 * 1024;
// Streamed entries up to this size are gathered into one Buffer: archiver appends a Buffer several
// times faster than a stream (no data descriptor, no per-chunk CRC stream).
const GATHER_BYTES = 1024 * 1024;
// DOS dates in zip start in 1980; tar's 11 octal digits of seconds end in 2242.
const EARLIEST = Date.UTC(1980, 0, 1, 0, 0, 2);
const LATEST = { zip: Date.UTC(2107, 11, 31, 23, 59, 58), tar: (8 ** 11 - 1) * 1000 };

interface InputBase {
  /** Name inside the archive: a safe relative path (core/safe-path.ts), or one below `.update-mirror/`. */
  name: string;
  /** Exact byte count: a different count from `data` or `stream()` fails the write with IntegrityError. */
  size: number;
  mtime: Date;
}

/** A file whose bytes are in memory (small files). */
export type BufferedInput = InputBase & { data: Buffer };
/**
 * A file whose bytes are streamed when its turn comes (`stream()` is called once, then). As with any
 * stream, a yielded chunk belongs to the writer from then on: yield fresh buffers, never one reused.
 */
export type StreamedInput = InputBase & { stream(): AsyncIterable<Uint8Array> };
/** One file to write. */
export type ArchiveInput = BufferedInput | StreamedInput;

export interface WriteArchiveOptions {
  format: ArchiveFormat;
  /** Final path of the archive, e.g. /media/usb/full.tar; its folder must exist. */
  path: string;
  /** Bytes per volume: volumes are `<path>.001`, `<path>.002`, ... (at least MIN_SPLIT_SIZE). */
  splitSize?: number;
  /** Files in the order they are to be written (put what a sequential reader needs first, first). */
  entries: AsyncIterable<ArchiveInput> | Iterable<ArchiveInput>;
  signal?: AbortSignal;
  /** Called as archive bytes reach the volume files (about every MiB) with the total so far. */
  onProgress?: (archiveBytes: number) => void;
}

export interface WrittenArchive {
  /** The archive's files in order: `[path]`, or the volumes when split. */
  volumes: string[];
  /** Total archive bytes over all volumes. */
  bytes: number;
}

/**
 * Writes the entries into a zip (stored, zip64 when needed) or tar archive at `path`, split into
 * volumes of `splitSize` bytes when given. Streamed: at most about 16 MiB is buffered. Atomic: volumes
 * are written under `.partial` names, fsynced, and renamed into place only when everything succeeded;
 * then volumes of an earlier export of the same name that no longer belong are removed. On any failure
 * nothing new is left at `path` (an earlier export there is untouched) and the error is rethrown.
 *
 * Throws UsageError for a splitSize below MIN_SPLIT_SIZE; UnsafePathError for an entry name breaking
 * the safe-path rules; InputRefusedError for names that conflict (duplicates, case-only duplicates, a
 * file that is also a folder); IntegrityError when an entry's bytes do not match its size; whatever an
 * entry's stream throws (for example the caller's IntegrityError on a hash mismatch); IoError or
 * NotFoundError naming the archive file for file-system failures (disk full, folder missing);
 * `signal.reason` when aborted.
 */
export async function writeArchive(options: WriteArchiveOptions): Promise<WrittenArchive> {
  const { format, path, splitSize, signal } = options;
  if (splitSize !== undefined && (!Number.isSafeInteger(splitSize) || splitSize < MIN_SPLIT_SIZE)) {
    throw new UsageError(`split size ${splitSize} is too small: volumes must hold at least ${MIN_SPLIT_SIZE} bytes (64 KiB)`);
  }
  signal?.throwIfAborted();
  const failure = new Failure();
  const output = new VolumeWriter(path, splitSize, () => failure.wake(), options.onProgress);
  const archive: Archiver = format === "zip" ? new ZipArchive({ store: true }) : new TarArchive();
  // Listeners stay attached after a failure: a late "error" from an abandoned archiver must not crash the process.
  archive.on("error", (err) => failure.fail(err));
  archive.on("warning", (err) => failure.fail(err));
  const sink = new Writable({
    write: (chunk: Buffer, _encoding, callback) => output.write(chunk).then(() => callback(), callback),
    final: (callback) => output.finish().then(() => callback(), callback),
  });
  // A plain pipe, not pipeline(): on failure the archiver is cut off and dropped, never destroyed
  // (destroying archiver's readable-stream internals raises errors nobody listens to).
  const written = new Promise<void>((resolve, reject) => {
    sink.on("finish", resolve);
    sink.on("error", reject);
  });
  written.catch((err: unknown) => failure.fail(err));
  archive.pipe(sink);
  const onAbort = () => failure.fail(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const streams = new Set<Readable>();
  const iterator = Symbol.asyncIterator in options.entries ? options.entries[Symbol.asyncIterator]() : options.entries[Symbol.iterator]();
  try {
    const names: string[] = [];
    let appended = 0;
    for (;;) {
      const next = await failure.race(Promise.resolve(iterator.next()));
      if (next.done) break;
      const input = next.value;
      checkInput(input);
      names.push(input.name);
      const entry = { name: input.name, date: clampDate(input.mtime, format), mode: 0o644 };
      if ("data" in input) {
        archive.append(input.data, entry);
      } else if (input.size <= GATHER_BYTES) {
        archive.append(await failure.race(gather(input)), entry);
      } else {
        const stream = Readable.from(counted(input, failure), { objectMode: false });
        stream.on("error", (err) => failure.fail(err));
        stream.on("close", () => streams.delete(stream));
        streams.add(stream);
        // Given a size, archiver's tar streams the entry; without one it would gather the whole stream in memory.
        archive.append(stream, format === "tar" ? { ...entry, stats: { size: input.size } as Stats } : entry);
      }
      appended += input.size;
      // Backpressure: wait until what was appended is (nearly) all written out.
      await failure.race(failure.until(() => appended - output.accepted <= BUFFER_BUDGET));
    }
    const conflicts = pathSetConflicts(names);
    if (conflicts.length > 0) throw new InputRefusedError(`refusing to write archive ${path}: entry names conflict`, conflicts);
    await failure.race(archive.finalize());
    await failure.race(written);
    failure.throwIfFailed();
    const volumes = await output.commit();
    return { volumes, bytes: output.accepted };
  } catch (err) {
    const cause = failure.error ?? err;
    failure.fail(cause);
    // Not archive.abort(): archiver 8's tar plugin then calls unpipe() on tar-stream, which has none,
    // and throws from a callback. Cutting the archiver off and dropping it is enough.
    archive.unpipe(sink);
    sink.destroy();
    for (const stream of streams) stream.destroy();
    void Promise.resolve(iterator.return?.()).catch(() => undefined);
    await output.discard();
    throw cause;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

function checkInput(input: ArchiveInput): void {
  const reason = archiveNameReason(input.name);
  if (reason !== undefined) throw new UnsafePathError(input.name, reason);
  if (!Number.isSafeInteger(input.size) || input.size < 0) throw new TypeError(`${JSON.stringify(input.name)}: size ${input.size} is not a byte count`);
  if (!(input.mtime instanceof Date) || Number.isNaN(input.mtime.getTime())) throw new TypeError(`${JSON.stringify(input.name)}: mtime is not a valid Date`);
  if ("data" in input && input.data.length !== input.size) {
    throw new IntegrityError(`${JSON.stringify(input.name)}: ${input.data.length} bytes given for a file of ${input.size}`);
  }
}

function clampDate(date: Date, format: ArchiveFormat): Date {
  const time = date.getTime();
  if (time < EARLIEST) return new Date(EARLIEST);
  if (time > LATEST[format]) return new Date(LATEST[format]);
  return date;
}

// A streamed entry's bytes, refusing more or fewer than its declared size, and stopping after a failure.
async function* counted(input: StreamedInput, failure: Failure): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const chunk of input.stream()) {
    failure.throwIfFailed();
    seen += chunk.length;
    if (seen > input.size) throw new IntegrityError(`${JSON.stringify(input.name)}: more than its declared ${input.size} bytes`);
    yield chunk;
  }
  if (seen !== input.size) throw new IntegrityError(`${JSON.stringify(input.name)}: ${seen} bytes, not its declared ${input.size}`);
}

async function gather(input: StreamedInput): Promise<Buffer> {
  const data = Buffer.allocUnsafe(input.size);
  let seen = 0;
  for await (const chunk of input.stream()) {
    if (seen + chunk.length > input.size) throw new IntegrityError(`${JSON.stringify(input.name)}: more than its declared ${input.size} bytes`);
    data.set(chunk, seen);
    seen += chunk.length;
  }
  if (seen !== input.size) throw new IntegrityError(`${JSON.stringify(input.name)}: ${seen} bytes, not its declared ${input.size}`);
  return data;
}

// The first error of a write, wherever it happens (the archiver, an entry's stream, the disk, an
// abort), and the means to wake the main loop when it happens or when output makes progress.
class Failure {
  error: unknown;
  private failed = false;
  // Listeners rather than Promise.race against one long-pending promise, which would keep a reaction
  // per call alive until the end of the write (one per entry: a leak on large trees).
  private readonly onFail = new Set<() => void>();
  private waiters: (() => void)[] = [];

  fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.error = err ?? new Error("archive write failed");
    for (const listener of this.onFail) listener();
    this.onFail.clear();
    this.wake();
  }

  throwIfFailed(): void {
    if (this.failed) throw this.error;
  }

  /** Settles like `promise`, or rejects with the first failure if that comes first. */
  race<T>(promise: Promise<T>): Promise<T> {
    promise.catch(() => undefined);
    if (this.failed) return Promise.reject(this.error);
    return new Promise<T>((resolve, reject) => {
      const listener = () => reject(this.error);
      this.onFail.add(listener);
      promise.then(
        (value) => {
          this.onFail.delete(listener);
          resolve(value);
        },
        (err: unknown) => {
          this.onFail.delete(listener);
          reject(err);
        },
      );
    });
  }

  /** Resolves once `condition` holds, checked again on every wake (or at once after a failure). */
  async until(condition: () => boolean): Promise<void> {
    while (!condition() && !this.failed) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}
