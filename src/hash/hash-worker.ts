// Worker thread for hash-pool.ts: hashes batches of files with SHA-256 off the main thread.
import { createHash } from "node:crypto";
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

// Measured fastest in stack-node.md §3: synchronous reads into one reused 4 MiB buffer.
const CHUNK = 4 * 1024 * 1024;
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
    const hash = createHash("sha256");
    let total = 0;
    // Read to EOF rather than to st.size, so a file that grows while we read is detected.
    for (;;) {
      const n = readSync(fd, buffer, 0, CHUNK, total);
      if (n === 0) break;
      hash.update(n === CHUNK ? buffer : buffer.subarray(0, n));
      total += n;
    }
    const want = expected ?? st.size;
    if (total !== want) {
      return { ok: false, kind: "integrity", code: null, message: `size changed while hashing: expected ${want}, read ${total}` };
    }
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
