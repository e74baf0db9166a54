// Streaming a byte range of an open file into a response: one read ahead of the socket, buffers reused, chunk sizes shared out of a memory budget.
import { close, read } from "node:fs";
import type { ServerResponse } from "node:http";

/** Read buffers shared by every response streaming at once: fewer streams get bigger chunks. */
export interface StreamBudget {
  /** Bytes of read buffers all streams together should stay within (each holds two chunks). */
  readonly bytes: number;
  /** Streams running now. */
  active: number;
}

const MIN_CHUNK = 64 * 1024;
// Past 1 MiB per read, throughput no longer grows on loopback or disk while memory per stream does.
const MAX_CHUNK = 1024 * 1024;

export function createStreamBudget(bytes = 64 * 1024 * 1024): StreamBudget {
  return { bytes, active: 0 };
}

function chunkSize(budget: StreamBudget, length: number): number {
  const share = Math.floor(budget.bytes / (2 * Math.max(1, budget.active)) / MIN_CHUNK) * MIN_CHUNK;
  return Math.min(length, Math.max(MIN_CHUNK, Math.min(MAX_CHUNK, share)));
}

function readInto(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buffer, 0, length, position, (err, bytes) => (err ? reject(err) : resolve(bytes)));
  });
}

/** Resolves when `res` can take more (drain) or is gone (close); true when it can. */
function writable(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const onDrain = () => {
      res.off("close", onClose);
      resolve(true);
    };
    const onClose = () => {
      res.off("drain", onDrain);
      resolve(false);
    };
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}

/**
 * Writes bytes `start` to `start + length - 1` of `fd` to `res` and ends it, then closes `fd` (always,
 * and only once no read is in flight, so a reused descriptor number is never read). The next chunk is
 * read while the previous one is being sent, by positioned reads that leave the descriptor's offset
 * alone. If the file ends early or a read fails, the response is destroyed short of its
 * Content-Length, the only honest signal once headers are out. `onSent` counts body bytes handed to the socket.
 */
export async function streamFile(res: ServerResponse, fd: number, start: number, length: number, budget: StreamBudget, onSent: (bytes: number) => void): Promise<void> {
  budget.active += 1;
  const size = chunkSize(budget, length);
  // Two buffers, taken turns: one being filled while the other is written; returned once the socket has it.
  const free: Buffer[] = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  const end = start + length;
  let reading: Promise<{ buffer: Buffer; bytes: number }> | undefined;
  const readAt = (position: number) => {
    const buffer = free.pop() ?? Buffer.allocUnsafe(size);
    const want = Math.min(size, end - position);
    return readInto(fd, buffer, want, position).then((bytes) => ({ buffer, bytes }));
  };
  try {
    let position = start;
    let next = readAt(position);
    reading = next;
    while (position < end) {
      const { buffer, bytes } = await next;
      reading = undefined;
      if (bytes === 0) throw new Error("the file ended before its listed size");
      position += bytes;
      if (position < end) {
        next = readAt(position);
        reading = next;
      }
      if (res.destroyed) break;
      onSent(bytes);
      const more = res.write(bytes === buffer.length ? buffer : buffer.subarray(0, bytes), () => free.push(buffer));
      if (!more && !(await writable(res))) break;
    }
    if (!res.destroyed) res.end();
  } catch {
    res.destroy();
  } finally {
    if (reading !== undefined) await reading.catch(() => undefined);
    close(fd, () => undefined);
    budget.active -= 1;
  }
}
