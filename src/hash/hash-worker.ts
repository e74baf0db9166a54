// Worker thread for hash-pool.ts: hashes batches of files with SHA-256 off the main thread.
import { createHash, hash as oneShotHash } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { parentPort } from "node:worker_threads";

// Message shapes shared with hash-pool.ts (imported there as types only, so no runtime cycle).
/** One batch: files are hashed in order and answered in one message. `expected: null` = size unknown. */
export interface HashRequest {
  id: number;
  files: { path: string; expected: number | null }[];
}
/** Errors cross the thread boundary as plain data and are rebuilt as typed errors on the main thread. */
export type HashResult =
  | { ok: true; sha256: string; size: number }
  | { ok: false; kind: "fs" | "integrity"; code: string | null; message: string };
export interface HashResponse {
  id: number;
  results: HashResult[];
}

// Read size, measured on the target 2-core VM (192 MiB file, hot page cache, one thread):
//   64-128 KiB reads: read alone 6.6-8 GB/s, read+sha256 1.15-1.2 GB/s;
//   256 KiB-4 MiB reads: read alone 1.5-1.9 GB/s, read+sha256 0.7-0.8 GB/s.
// stack-node.md §3 found 4 MiB best on another machine; here larger reads were consistently worse,
// and 128 KiB sits in L2 together with the hash state, so it is the safer choice on both.
const CHUNK = 128 * 1024;
const buffer = Buffer.allocUnsafe(CHUNK);

// O_NONBLOCK so opening a FIFO cannot hang the worker waiting for a writer; it has no effect on regular files.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

function hashOne(file: string, expected: number | null): HashResult {
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch (err) {
    return fsFailure(err);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) return { ok: false, kind: "fs", code: "EISDIR", message: "is a directory" };
    if (!st.isFile()) return { ok: false, kind: "fs", code: null, message: "not a regular file" };
    const want = expected ?? st.size;

    // Most files fit in one read. A short read that reaches the size fstat reported is EOF, so the
    // usual confirming read (one more syscall per file, ~5% of the per-file cost here) is skipped;
    // a file that grows after this read is indistinguishable from one that grows after we close it.
    const first = readSync(fd, buffer, 0, CHUNK, 0);
    if (first < CHUNK && first === st.size) {
      if (first !== want) return sizeChanged(want, first);
      return { ok: true, sha256: oneShotHash("sha256", buffer.subarray(0, first)), size: first };
    }

    // Otherwise read to EOF rather than to st.size, so a file that grows or shrinks while we read is caught.
    const hash = createHash("sha256");
    let total = 0;
    for (let n = first; n > 0; n = readSync(fd, buffer, 0, CHUNK, total)) {
      hash.update(n === CHUNK ? buffer : buffer.subarray(0, n));
      total += n;
    }
    if (total !== want) return sizeChanged(want, total);
    return { ok: true, sha256: hash.digest("hex"), size: total };
  } catch (err) {
    return fsFailure(err);
  } finally {
    try {
      closeSync(fd);
    } catch {
      // A failed close of a read-only descriptor cannot lose data; the result above stands.
    }
  }
}

function sizeChanged(expected: number, read: number): HashResult {
  return { ok: false, kind: "integrity", code: null, message: `size changed while hashing: expected ${expected}, read ${read}` };
}

function fsFailure(err: unknown): HashResult {
  const e = err as NodeJS.ErrnoException;
  return { ok: false, kind: "fs", code: typeof e?.code === "string" ? e.code : null, message: String(e?.message ?? err) };
}

const port = parentPort;
if (!port) throw new Error("hash-worker.ts must be started as a worker thread by hash-pool.ts");
port.on("message", (req: HashRequest) => {
  const results: HashResult[] = new Array(req.files.length);
  for (let i = 0; i < req.files.length; i++) {
    const f = req.files[i] as HashRequest["files"][number];
    results[i] = hashOne(f.path, f.expected);
  }
  const res: HashResponse = { id: req.id, results };
  port.postMessage(res);
});
