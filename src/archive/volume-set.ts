// Positioned reads over the concatenation of an archive's volumes, so a split set reads like one file.
import { type FileHandle, open, stat } from "node:fs/promises";
import { fsError, IntegrityError } from "../core/errors.js";

// Handles kept open at once: a set of many small volumes must not exhaust file descriptors.
const MAX_OPEN_HANDLES = 16;
// Small reads (headers) are served from one read-ahead window: consecutive headers of small entries
// then cost one read, while a large entry in between is skipped after reading at most this much of it.
const WINDOW_BYTES = 64 * 1024;
// Several windows, because a zip index alternates between the central directory at the end and the
// local headers from the start.
const WINDOWS = 4;
/** Size of the chunks `stream` yields. */
export const STREAM_CHUNK_BYTES = 1024 * 1024;

interface Slot {
  handle: Promise<FileHandle>;
  users: number;
  lastUse: number;
}

/** The volumes of one archive read as a single byte range [0, size). */
export class VolumeSet {
  readonly volumes: readonly string[];
  readonly size: number;
  private readonly starts: readonly number[];
  private readonly sizes: readonly number[];
  private readonly slots = new Map<number, Slot>();
  private readonly windows: { start: number; data: Buffer; lastUse: number }[] = [];
  private clock = 0;
  private closed = false;

  private constructor(volumes: readonly string[], sizes: readonly number[]) {
    this.volumes = volumes;
    this.sizes = sizes;
    const starts: number[] = [];
    let total = 0;
    for (const size of sizes) {
      starts.push(total);
      total += size;
    }
    this.starts = starts;
    this.size = total;
  }

  /** Measures the volumes (in order). Throws NotFoundError/IoError naming the volume. */
  static async open(volumes: readonly string[]): Promise<VolumeSet> {
    const sizes: number[] = [];
    for (const volume of volumes) {
      try {
        sizes.push((await stat(volume)).size);
      } catch (err) {
        throw fsError(err, `reading archive volume ${volume}`);
      }
    }
    return new VolumeSet([...volumes], sizes);
  }

  /**
   * Reads up to `length` bytes at `position` into `buffer` across volume boundaries; fewer only at
   * the end of the set. Throws IoError naming the volume, IntegrityError when a volume has shrunk.
   */
  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    let done = 0;
    while (done < length && position + done < this.size) {
      const at = position + done;
      const index = this.indexOf(at);
      const within = at - (this.starts[index] ?? 0);
      const want = Math.min(length - done, (this.sizes[index] ?? 0) - within);
      const got = await this.withHandle(index, (handle) => readFully(handle, buffer, offset + done, want, within));
      if (got < want) {
        throw new IntegrityError(`archive volume ${this.volumes[index]} is shorter than when it was opened (${this.sizes[index]} bytes)`);
      }
      done += want;
    }
    return done;
  }

  /**
   * The bytes [position, position + length), clamped to the end of the set (so possibly shorter).
   * The buffer may be shared with later small reads: read it, do not modify it. Throws as `read`.
   */
  async readAt(position: number, length: number): Promise<Buffer> {
    const end = Math.min(position + length, this.size);
    if (end <= position) return Buffer.alloc(0);
    for (const window of this.windows) {
      if (position >= window.start && end <= window.start + window.data.length) {
        window.lastUse = ++this.clock;
        return window.data.subarray(position - window.start, end - window.start);
      }
    }
    if (end - position > WINDOW_BYTES / 4) {
      const data = Buffer.allocUnsafe(end - position);
      return data.subarray(0, await this.read(data, 0, data.length, position));
    }
    // A fresh buffer each time: slices handed out earlier stay valid.
    const data = Buffer.allocUnsafe(Math.min(WINDOW_BYTES, this.size - position));
    const got = await this.read(data, 0, data.length, position);
    const window = { start: position, data: data.subarray(0, got), lastUse: ++this.clock };
    if (this.windows.length < WINDOWS) this.windows.push(window);
    else this.windows[this.windows.reduce((oldest, w, i, all) => (w.lastUse < (all[oldest]?.lastUse ?? 0) ? i : oldest), 0)] = window;
    return data.subarray(0, Math.min(got, end - position));
  }

  /** Yields the bytes [start, end) in chunks of at most `chunkBytes`. Throws as `read`, and when the range passes the end. */
  async *stream(start: number, end: number, chunkBytes = STREAM_CHUNK_BYTES): AsyncGenerator<Buffer> {
    if (end > this.size) throw new IntegrityError(`reading bytes ${start}-${end} of an archive of ${this.size} bytes`);
    for (let at = start; at < end; ) {
      const chunk = Buffer.allocUnsafe(Math.min(chunkBytes, end - at));
      const got = await this.read(chunk, 0, chunk.length, at);
      if (got < chunk.length) throw new IntegrityError(`archive ${this.volumes[0]} ended early at byte ${at + got}`);
      at += got;
      yield chunk;
    }
  }

  /** Closes every open handle; later reads fail. Never throws. */
  async close(): Promise<void> {
    this.closed = true;
    const slots = [...this.slots.values()];
    this.slots.clear();
    await Promise.all(slots.map((slot) => slot.handle.then((handle) => handle.close()).catch(() => undefined)));
  }

  private indexOf(position: number): number {
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if ((this.starts[mid] ?? 0) <= position) low = mid;
      else high = mid - 1;
    }
    // Skip empty volumes that share their start with the next one.
    while (low < this.sizes.length - 1 && position - (this.starts[low] ?? 0) >= (this.sizes[low] ?? 0)) low += 1;
    return low;
  }

  private async withHandle<T>(index: number, use: (handle: FileHandle) => Promise<T>): Promise<T> {
    const volume = this.volumes[index] ?? "";
    if (this.closed) throw new IntegrityError(`archive ${volume} was closed while it was being read`);
    let slot = this.slots.get(index);
    if (!slot) {
      slot = { handle: open(volume, "r"), users: 0, lastUse: 0 };
      this.slots.set(index, slot);
    }
    const current = slot;
    current.users += 1;
    try {
      const handle = await current.handle.catch((err: unknown) => {
        if (this.slots.get(index) === current) this.slots.delete(index);
        throw fsError(err, `opening archive volume ${volume}`);
      });
      try {
        return await use(handle);
      } catch (err) {
        throw fsError(err, `reading archive volume ${volume}`);
      }
    } finally {
      current.users -= 1;
      this.clock += 1;
      current.lastUse = this.clock;
      this.trim();
    }
  }

  private trim(): void {
    if (this.slots.size <= MAX_OPEN_HANDLES) return;
    const idle = [...this.slots].filter(([, slot]) => slot.users === 0).sort((a, b) => a[1].lastUse - b[1].lastUse);
    for (const [index, slot] of idle.slice(0, this.slots.size - MAX_OPEN_HANDLES)) {
      this.slots.delete(index);
      void slot.handle.then((handle) => handle.close()).catch(() => undefined);
    }
  }
}

async function readFully(handle: FileHandle, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, offset + done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}
