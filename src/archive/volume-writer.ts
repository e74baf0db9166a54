// One byte stream written into temporary volume files beside the target, then renamed into place or removed.
import { type FileHandle, lstat, open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsError } from "../core/errors.js";
import { fsyncDir } from "../fs/atomic-write.js";
import { listVolumes, volumeName, volumeNumber } from "./volumes.js";

// Archivers emit many small pieces (headers, names): gather them into writes of about this size.
const FLUSH_BYTES = 1024 * 1024;
const PARTIAL = ".partial";
// Every this many bytes a background fdatasync starts, so the disk writes while the archive is still
// being produced and the closing fsync finds little left (the folder store does the same with syncfs).
const BACKGROUND_SYNC_BYTES = 64 * 1024 * 1024;

/**
 * Writes bytes to `<path>.partial`, or when split to `<path>.001.partial`, `<path>.002.partial`, ...
 * of `splitSize` bytes each. Each volume is fsynced when full or finished. `commit` renames them into
 * place; `discard` removes them. Errors are IoError/NotFoundError naming the archive file.
 */
export class VolumeWriter {
  /** Bytes handed to `write` so far (buffered or on disk). */
  accepted = 0;
  /** Bytes written to the volume files so far (not necessarily durable before `finish`). */
  written = 0;
  private readonly path: string;
  private readonly splitSize: number | undefined;
  private readonly onAccepted: () => void;
  private readonly onWritten: (written: number) => void;
  private readonly temps: string[] = [];
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private handle: FileHandle | undefined;
  private inVolume = 0;
  private unsynced = 0;
  private background: Promise<void> | undefined;
  private backgroundError: unknown;
  private busy: Promise<unknown> = Promise.resolve();

  constructor(path: string, splitSize: number | undefined, onAccepted: () => void = () => undefined, onWritten: (written: number) => void = () => undefined) {
    this.path = path;
    this.splitSize = splitSize;
    this.onAccepted = onAccepted;
    this.onWritten = onWritten;
  }

  /** Takes `chunk` (kept until flushed: do not reuse it); resolves once buffered or written. */
  write(chunk: Uint8Array): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.accepted += chunk.length;
    this.onAccepted();
    return this.pendingBytes >= FLUSH_BYTES ? this.serial(() => this.flush()) : Promise.resolve();
  }

  /** Writes what is buffered, fsyncs and closes the last volume. */
  finish(): Promise<void> {
    return this.serial(async () => {
      await this.flush();
      if (this.temps.length === 0) await this.nextVolume();
      await this.closeVolume(true);
    });
  }

  /**
   * Moves the finished volumes into place and removes what an earlier export of the same name left:
   * further volumes, the unsplit file when splitting, the volumes when not, and stale temporaries.
   * When split, volume 001 is placed last and removed first, so that at no instant do old and new
   * volumes form one consecutive set: a crash leaves either the complete new set or no `.001`.
   * Returns the final volume paths in order.
   */
  async commit(): Promise<string[]> {
    const dir = dirname(this.path);
    const finals = this.splitSize === undefined ? [this.path] : this.temps.map((_, i) => volumeName(this.path, i + 1));
    try {
      const old = await listVolumes(this.path);
      const first = old.get(1);
      if (first !== undefined) await removeFile(first);
      if (this.splitSize === undefined) {
        await rename(this.temps[0] ?? "", this.path);
        for (const [n, volume] of old) if (n !== 1) await removeFile(volume);
      } else {
        await removeFile(this.path);
        for (const [n, volume] of old) if (n > finals.length) await removeFile(volume);
        for (let i = finals.length - 1; i >= 0; i -= 1) await rename(this.temps[i] ?? "", finals[i] ?? "");
      }
      this.temps.length = 0;
      await fsyncDir(dir);
      await this.removeStaleTemporaries();
    } catch (err) {
      throw fsError(err, `placing archive ${this.path}`);
    }
    return finals;
  }

  /** Closes and removes every temporary volume written. Never throws. */
  async discard(): Promise<void> {
    await this.busy.catch(() => undefined);
    await this.closeVolume(false).catch(() => undefined);
    this.pending = [];
    await Promise.all(this.temps.map((temp) => unlink(temp).catch(() => undefined)));
    this.temps.length = 0;
  }

  private serial(step: () => Promise<void>): Promise<void> {
    const run = this.busy.then(step);
    this.busy = run.catch(() => undefined);
    return run;
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const data = this.pending.length === 1 ? (this.pending[0] ?? new Uint8Array()) : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let at = 0;
    while (at < data.length) {
      if (this.handle === undefined || (this.splitSize !== undefined && this.inVolume >= this.splitSize)) await this.nextVolume();
      const room = this.splitSize === undefined ? data.length - at : this.splitSize - this.inVolume;
      const count = Math.min(room, data.length - at);
      await this.writeAll(data, at, count);
      this.inVolume += count;
      this.unsynced += count;
      this.written += count;
      at += count;
    }
    this.onWritten(this.written);
    if (this.unsynced >= BACKGROUND_SYNC_BYTES && this.background === undefined && this.handle !== undefined) {
      this.unsynced = 0;
      const handle = this.handle;
      this.background = handle.datasync().then(
        () => {
          this.background = undefined;
        },
        (err: unknown) => {
          this.background = undefined;
          this.backgroundError ??= err;
        },
      );
    }
  }

  private async writeAll(data: Uint8Array, from: number, count: number): Promise<void> {
    const handle = this.handle;
    if (handle === undefined) return;
    try {
      if (this.backgroundError !== undefined) throw this.backgroundError;
      for (let done = 0; done < count; ) {
        const { bytesWritten } = await handle.write(data, from + done, count - done);
        done += bytesWritten;
      }
    } catch (err) {
      throw fsError(err, `writing ${this.finalName(this.temps.length)}`);
    }
  }

  private async nextVolume(): Promise<void> {
    await this.closeVolume(true);
    const n = this.temps.length + 1;
    const temp = `${this.finalName(n)}${PARTIAL}`;
    try {
      // No mkdir: a missing folder usually means the medium is not mounted, and writing there would fill the host's disk.
      this.handle = await open(temp, "w", 0o644);
    } catch (err) {
      throw fsError(err, `writing ${this.finalName(n)}`);
    }
    this.temps.push(temp);
    this.inVolume = 0;
  }

  private async closeVolume(durable: boolean): Promise<void> {
    const handle = this.handle;
    if (handle === undefined) return;
    this.handle = undefined;
    try {
      await this.background;
      if (this.backgroundError !== undefined) throw this.backgroundError;
      this.unsynced = 0;
      if (durable) await handle.sync();
    } catch (err) {
      throw fsError(err, `writing ${this.finalName(this.temps.length)}`);
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  private finalName(n: number): string {
    return this.splitSize === undefined ? this.path : volumeName(this.path, n);
  }

  private async removeStaleTemporaries(): Promise<void> {
    const base = basename(this.path);
    for (const name of await readdir(dirname(this.path))) {
      if (!name.endsWith(PARTIAL)) continue;
      const stem = name.slice(0, -PARTIAL.length);
      if (stem === base || volumeNumber(base, stem) !== undefined) await removeFile(join(dirname(this.path), name));
    }
  }
}

// Removes a file left by an earlier export; a folder of that name is left alone.
async function removeFile(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isDirectory()) return;
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
