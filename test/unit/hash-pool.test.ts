// Tests for the worker-thread SHA-256 pool: digests at buffer boundaries, batching under load, typed errors, crashes, close.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { IntegrityError, IoError, NotFoundError, UsageError } from "../../src/core/errors.js";
import { createHashPool } from "../../src/hash/hash-pool.js";
import type { HashPool } from "../../src/hash/hash-pool.js";

const run = promisify(execFile);
const MiB = 1024 * 1024;
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

let dir: string;
let pool: HashPool;

// Deterministic bytes so a failure reproduces; content varies with the seed so files differ.
function bytes(size: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

function sha256(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

async function fileOf(name: string, content: Buffer): Promise<string> {
  const abs = path.join(dir, name);
  await mkdir(path.dirname(abs), { recursive: true });
  await writeFile(abs, content);
  return abs;
}

/** A worker that dies as soon as it is given work, standing in for a crash mid-batch. */
function dyingOnMessage(): Worker {
  return new Worker("require('node:worker_threads').parentPort.on('message', () => process.exit(7));", { eval: true });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "hash-pool-test-"));
  pool = createHashPool({ workers: 2 });
});

afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

describe("createHashPool", () => {
  test("defaults to one worker per core, capped at 8", async () => {
    const p = createHashPool();
    expect(p.workers).toBeGreaterThanOrEqual(1);
    expect(p.workers).toBeLessThanOrEqual(8);
    await p.close();
  });

  test("rejects a worker count that is not a whole number of at least 1", () => {
    expect(() => createHashPool({ workers: 0 })).toThrow(UsageError);
    expect(() => createHashPool({ workers: 1.5 })).toThrow(UsageError);
  });
});

describe("hashFile digests", () => {
  const sizes: [string, number][] = [
    ["empty", 0],
    ["one byte", 1],
    ["one byte under the worker's read size (128 KiB)", 128 * 1024 - 1],
    ["exactly the worker's read size", 128 * 1024],
    ["one byte over the worker's read size", 128 * 1024 + 1],
    ["exactly one read buffer (4 MiB)", 4 * MiB],
    ["one byte over the read buffer", 4 * MiB + 1],
    ["several read buffers, uneven", 9 * MiB + 12345],
  ];

  for (const [label, size] of sizes) {
    test(`${label}: matches createHash on the same bytes, with and without expectedSize`, async () => {
      const content = bytes(size, size + 11);
      const abs = await fileOf(`sizes/${size}.bin`, content);
      const want = { sha256: sha256(content), size };
      expect(await pool.hashFile(abs, size)).toEqual(want);
      expect(await pool.hashFile(abs)).toEqual(want);
    });
  }

  test("2000 small files requested at once, with two large ones mixed in, all match", async () => {
    const expected = new Map<string, { sha256: string; size: number }>();
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 2000; i++) {
      const size = (i * 7919) % 30_000;
      const content = bytes(size, i + 1);
      const abs = path.join(dir, "many", `d${i % 20}`, `f${i}.bin`);
      expected.set(abs, { sha256: sha256(content), size });
      writes.push(mkdir(path.dirname(abs), { recursive: true }).then(() => writeFile(abs, content)));
    }
    for (const size of [5 * MiB, 6 * MiB + 3]) {
      const content = bytes(size, size);
      const abs = path.join(dir, "many", "d0", `large-${size}.bin`);
      expected.set(abs, { sha256: sha256(content), size });
      writes.push(mkdir(path.dirname(abs), { recursive: true }).then(() => writeFile(abs, content)));
    }
    await Promise.all(writes);

    const entries = [...expected.entries()];
    // Half with a known size, half without, so both batching weights are exercised.
    const results = await Promise.all(entries.map(([abs, want], i) => pool.hashFile(abs, i % 2 === 0 ? want.size : undefined)));
    results.forEach((got, i) => {
      expect(got).toEqual((entries[i] as [string, { sha256: string; size: number }])[1]);
    });
  });
});

describe("hashFile errors", () => {
  test("a missing file is a NotFoundError naming it", async () => {
    const abs = path.join(dir, "nope", "missing.bin");
    const err = await pool.hashFile(abs).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toBe(`${abs}: not found`);
  });

  test("a size other than expected is an IntegrityError with both numbers", async () => {
    const abs = await fileOf("mismatch.bin", bytes(100, 5));
    const err = await pool.hashFile(abs, 99).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toBe(`${abs}: size changed while hashing: expected 99, read 100`);
    await expect(pool.hashFile(abs, 5 * MiB)).rejects.toThrow(`${abs}: size changed while hashing: expected ${5 * MiB}, read 100`);
  });

  test("a directory is an IoError", async () => {
    const sub = path.join(dir, "a-directory");
    await mkdir(sub, { recursive: true });
    const err = await pool.hashFile(sub).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IoError);
    expect((err as Error).message).toBe(`${sub}: is a directory`);
  });

  test("a FIFO is refused at once, not waited on", async () => {
    const fifo = path.join(dir, "a-fifo");
    await run("mkfifo", [fifo]);
    const err = await pool.hashFile(fifo).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IoError);
    expect((err as Error).message).toBe(`${fifo}: not a regular file`);
  });

  test("one bad file does not spoil the others in its batch", async () => {
    const good = await fileOf("batch/good.bin", bytes(10, 3));
    const [a, b, c] = await Promise.allSettled([
      pool.hashFile(good),
      pool.hashFile(path.join(dir, "batch", "missing.bin")),
      pool.hashFile(good, 10),
    ]);
    expect(a).toEqual({ status: "fulfilled", value: { sha256: sha256(bytes(10, 3)), size: 10 } });
    expect(b?.status).toBe("rejected");
    expect(c).toEqual(a);
  });
});

describe("worker crashes and close", () => {
  test("a crash rejects the in-flight files and a replacement worker carries on", async () => {
    const abs = await fileOf("crash/ok.bin", bytes(1000, 9));
    let spawned = 0;
    const p = createHashPool({
      workers: 1,
      spawnWorker: (spawnDefault) => (++spawned === 1 ? dyingOnMessage() : spawnDefault()),
    });
    try {
      await expect(p.hashFile(abs)).rejects.toThrow(`${abs}: hash worker stopped unexpectedly (exit code 7)`);
      expect(await p.hashFile(abs)).toEqual({ sha256: sha256(bytes(1000, 9)), size: 1000 });
      expect(spawned).toBe(2);
    } finally {
      await p.close();
    }
  });

  test("workers that cannot start at all fail every pending file with a clear error instead of hanging", async () => {
    const abs = await fileOf("crash/never.bin", bytes(10, 1));
    let spawned = 0;
    const p = createHashPool({
      workers: 1,
      spawnWorker: () => {
        spawned += 1;
        return new Worker("process.exit(3);", { eval: true });
      },
    });
    try {
      const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => p.hashFile(abs)));
      expect(outcomes.every((o) => o.status === "rejected")).toBe(true);
      let last: unknown;
      for (let i = 0; i < 10; i++) {
        last = await p.hashFile(abs).catch((e: unknown) => e);
        if (/keep stopping/.test(String(last))) break;
      }
      expect(String(last)).toMatch(/hash workers keep stopping before doing any work \(last: exit code 3\)/);
      expect(spawned).toBeLessThanOrEqual(4);
    } finally {
      await p.close();
    }
  });

  test("close rejects pending files, later calls reject, and close can be called twice", async () => {
    const abs = await fileOf("close/big.bin", bytes(5 * MiB, 2));
    const p = createHashPool({ workers: 1 });
    const pending = [p.hashFile(abs, 5 * MiB), p.hashFile(abs), p.hashFile(abs)];
    const closing = p.close();
    const outcomes = await Promise.allSettled(pending);
    await closing;
    await p.close();
    for (const o of outcomes) {
      expect(o.status).toBe("rejected");
      expect(String((o as PromiseRejectedResult).reason)).toMatch(/hash pool closed/);
    }
    await expect(p.hashFile(abs)).rejects.toThrow(/hash pool is closed/);
  });

  test("an idle pool that was never closed does not keep the process alive", async () => {
    const code = [
      `import { createHashPool } from ${JSON.stringify(path.join(repoRoot, "src/hash/hash-pool.ts"))};`,
      "const pool = createHashPool({ workers: 3 });",
      `const d = await pool.hashFile(${JSON.stringify(path.join(repoRoot, "package.json"))});`,
      "console.log(d.sha256.length);",
    ].join("\n");
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      cwd: repoRoot,
      timeout: 30_000,
    });
    expect(stdout.trim()).toBe("64");
  });
});
