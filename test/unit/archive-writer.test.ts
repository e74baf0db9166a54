// Tests for writeArchive: refusals before writing, atomic placement, cleanup on failure and abort, stale volumes, bounded buffering.
import { existsSync, statSync } from "node:fs";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openArchive } from "../../src/archive/reader.js";
import { type ArchiveInput, MIN_SPLIT_SIZE, writeArchive } from "../../src/archive/writer.js";
import { InputRefusedError, IntegrityError, NotFoundError, UnsafePathError, UsageError } from "../../src/core/errors.js";
import { inputsOf, readEntry, sampleTree, sha256, type Tree } from "../support/archive-tree.js";
import { scratchDir } from "../support/cli.js";

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("archive-writer"));
});
afterEach(async () => cleanup());

const mtime = new Date("2024-01-02T03:04:06Z");
const file = (name: string, data: Buffer | string): ArchiveInput => {
  const bytes = Buffer.from(data);
  return { name, size: bytes.length, mtime, data: bytes };
};
const listing = async () => (await readdir(dir)).sort();

describe("writeArchive refuses before leaving anything behind", () => {
  it("refuses a split size below 64 KiB", async () => {
    const err = await writeArchive({ format: "tar", path: join(dir, "a.tar"), splitSize: MIN_SPLIT_SIZE - 1, entries: [file("a", "x")] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/at least 65536 bytes/);
    expect(await listing()).toEqual([]);
  });

  it.each([
    ["../evil.txt", /'\.\.' segment/],
    ["/etc/passwd", /absolute/],
    ["a\\b.txt", /backslash/],
    ["dir/", /empty segment/],
    [".update-mirror", /reserved/],
    [".update-mirror/../x", /'\.\.' segment/],
  ])("refuses the unsafe name %j with UnsafePathError", async (name, rule) => {
    for (const format of ["zip", "tar"] as const) {
      const err = await writeArchive({ format, path: join(dir, `a.${format}`), entries: [file("ok.txt", "fine"), file(name, "x")] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsafePathError);
      expect((err as Error).message).toMatch(rule);
    }
    expect(await listing()).toEqual([]);
  });

  it("refuses names that would conflict once extracted (duplicate, case-only, file and folder)", async () => {
    const err = await writeArchive({
      format: "zip",
      path: join(dir, "a.zip"),
      entries: [file("a.txt", "1"), file("a.txt", "2"), file("B.txt", "3"), file("b.txt", "4"), file("c", "5"), file("c/d", "6")],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputRefusedError);
    expect((err as Error).message).toMatch(/"a\.txt": listed twice/);
    expect((err as Error).message).toMatch(/"b\.txt": differs only in case from "B\.txt"/);
    expect((err as Error).message).toMatch(/"c\/d": its folder "c" is also listed as a file/);
    expect(await listing()).toEqual([]);
  });

  it("refuses bytes that do not match the declared size (buffer, short stream, long stream)", async () => {
    const cases: ArchiveInput[] = [
      { name: "short-buffer", size: 5, mtime, data: Buffer.from("abc") },
      { name: "short-stream", size: 2_000_000, mtime, stream: async function* () { yield Buffer.alloc(1_999_999); } },
      { name: "long-stream", size: 2_000_000, mtime, stream: async function* () { yield Buffer.alloc(2_000_001); } },
      { name: "small-long-stream", size: 10, mtime, stream: async function* () { yield Buffer.alloc(11); } },
    ];
    for (const format of ["zip", "tar"] as const) {
      for (const input of cases) {
        const err = await writeArchive({ format, path: join(dir, `a.${format}`), entries: [file("ok", "x"), input] }).catch((e: unknown) => e);
        expect(err, `${format} ${input.name}`).toBeInstanceOf(IntegrityError);
        expect((err as Error).message).toContain(input.name);
      }
    }
    expect(await listing()).toEqual([]);
  });

  it("does not create a missing target folder (an unmounted medium), and names the archive", async () => {
    const err = await writeArchive({ format: "tar", path: join(dir, "usb", "full.tar"), entries: [file("a", "x")] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain(join(dir, "usb", "full.tar"));
    expect(await listing()).toEqual([]);
  });
});

describe("writeArchive is atomic", () => {
  async function* failingAfter(tree: Tree, bytes: number, error: Error): AsyncGenerator<ArchiveInput> {
    let sent = 0;
    for (const [name, data] of tree) {
      yield {
        name,
        size: data.length,
        mtime,
        async *stream() {
          for (let at = 0; at < data.length; at += 50_000) {
            if (sent >= bytes) throw error;
            const chunk = data.subarray(at, at + 50_000);
            sent += chunk.length;
            yield chunk;
          }
        },
      };
    }
  }

  it.each(["zip", "tar"] as const)("%s: an entry stream throwing mid-way leaves no archive and no temporaries, and keeps an earlier export", async (format) => {
    const path = join(dir, `full.${format}`);
    const tree: Tree = [["a.bin", Buffer.alloc(3_000_000, 1)], ["b.bin", Buffer.alloc(3_000_000, 2)]];
    const hashMismatch = new IntegrityError("b.bin: sha256 does not match the manifest");
    for (const splitSize of [undefined, 1_000_000]) {
      const err = await writeArchive({ format, path, splitSize, entries: failingAfter(tree, 4_000_000, hashMismatch) }).catch((e: unknown) => e);
      expect(err).toBe(hashMismatch);
      expect(await listing()).toEqual([]);
    }
    // With an earlier export in place, a failed one leaves it exactly as it was.
    await writeArchive({ format, path, splitSize: 1_000_000, entries: inputsOf(tree, "buffer") });
    const before = await listing();
    // Compared as hashes: a deep equality of megabyte Buffers is very slow in the test runner.
    const bytesBefore = await Promise.all(before.map(async (name) => sha256(await readFile(join(dir, name)))));
    for (const splitSize of [undefined, 1_000_000, 2_000_000]) {
      await expect(writeArchive({ format, path, splitSize, entries: failingAfter(tree, 4_500_000, hashMismatch) })).rejects.toBe(hashMismatch);
      expect(await listing()).toEqual(before);
    }
    expect(await Promise.all(before.map(async (name) => sha256(await readFile(join(dir, name)))))).toEqual(bytesBefore);
  });

  it("stops on abort, rejects with the signal's reason and removes its temporaries", async () => {
    const controller = new AbortController();
    const reason = new Error("user pressed ctrl-c");
    async function* endless(): AsyncGenerator<ArchiveInput> {
      for (let i = 0; ; i += 1) {
        if (i === 30) controller.abort(reason);
        yield file(`f${i}.bin`, Buffer.alloc(100_000, i));
      }
    }
    for (const format of ["zip", "tar"] as const) {
      await expect(writeArchive({ format, path: join(dir, `a.${format}`), splitSize: 500_000, entries: endless(), signal: controller.signal })).rejects.toBe(reason);
      expect(await listing()).toEqual([]);
    }
    await expect(writeArchive({ format: "tar", path: join(dir, "b.tar"), entries: [file("a", "x")], signal: controller.signal })).rejects.toBe(reason);
  });

  it("removes volumes, the unsplit file and temporaries left by an earlier export of the same name", async () => {
    const path = join(dir, "full.tar");
    const tree: Tree = [["big.bin", Buffer.alloc(600_000, 7)]];
    const five = await writeArchive({ format: "tar", path, splitSize: 128 * 1024, entries: inputsOf(tree, "buffer") });
    expect(five.volumes.map((v) => v.slice(dir.length + 1))).toEqual(["full.tar.001", "full.tar.002", "full.tar.003", "full.tar.004", "full.tar.005"]);
    // Leftovers of a crashed run, and unrelated files that must stay.
    await writeFile(join(dir, "full.tar.009.partial"), "stale");
    await writeFile(join(dir, "full.tar.partial"), "stale");
    await writeFile(join(dir, "full.tar.old"), "keep");
    await writeFile(join(dir, "other.tar.001"), "keep");

    const two = await writeArchive({ format: "tar", path, splitSize: 400_000, entries: inputsOf(tree, "buffer") });
    expect(two.volumes).toHaveLength(2);
    expect(await listing()).toEqual(["full.tar.001", "full.tar.002", "full.tar.old", "other.tar.001"]);

    const whole = await writeArchive({ format: "tar", path, entries: inputsOf(tree, "buffer") });
    expect(whole.volumes).toEqual([path]);
    expect(await listing()).toEqual(["full.tar", "full.tar.old", "other.tar.001"]);
    expect(whole.bytes).toBe((await stat(path)).size);

    const again = await writeArchive({ format: "tar", path, splitSize: 400_000, entries: inputsOf(tree, "buffer") });
    expect(await listing()).toEqual(["full.tar.001", "full.tar.002", "full.tar.old", "other.tar.001"]);
    expect(again.bytes).toBe(whole.bytes);
    const reader = await openArchive(path);
    expect(sha256(await readEntry(reader, "big.bin"))).toBe(sha256(tree[0]?.[1] ?? Buffer.alloc(0)));
    await reader.close();
  });

  it("writes volumes of exactly the split size but the last, no empty trailing volume, and reports progress", async () => {
    const path = join(dir, "exact.zip");
    const progress: number[] = [];
    const result = await writeArchive({ format: "zip", path, splitSize: MIN_SPLIT_SIZE, entries: inputsOf(sampleTree(), "stream"), onProgress: (bytes) => progress.push(bytes) });
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.every((bytes, i) => i === 0 || bytes >= (progress[i - 1] ?? 0))).toBe(true);
    expect(progress.at(-1)).toBe(result.bytes);
    const sizes = await Promise.all(result.volumes.map(async (v) => (await stat(v)).size));
    expect(sizes.slice(0, -1).every((size) => size === MIN_SPLIT_SIZE)).toBe(true);
    expect(sizes.at(-1)).toBeGreaterThan(0);
    expect(sizes.at(-1)).toBeLessThanOrEqual(MIN_SPLIT_SIZE);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(result.bytes);
  });
});

describe("writeArchive streams", () => {
  it.each(["zip", "tar"] as const)("%s: pulls the next entry only once what came before is (nearly) written out", async (format) => {
    const path = join(dir, `bounded.${format}`);
    const lags: number[] = [];
    async function* entries(): AsyncGenerator<ArchiveInput> {
      let appended = 0;
      for (let i = 0; i < 96; i += 1) {
        // Bytes already on disk in the temporary file, against bytes handed over so far.
        // statSync: measuring must not give the writer time it would not otherwise have.
        const onDisk = existsSync(`${path}.partial`) ? statSync(`${path}.partial`).size : 0;
        lags.push(appended - onDisk);
        const size = i % 8 === 0 ? 3 * 1024 * 1024 : 700 * 1024;
        appended += size;
        if (i % 8 === 0) {
          yield { name: `s${i}`, size, mtime, stream: async function* () { for (let at = 0; at < size; at += 256 * 1024) yield Buffer.alloc(256 * 1024, i); } };
        } else {
          yield file(`b${i}`, Buffer.alloc(size, i));
        }
      }
    }
    const result = await writeArchive({ format, path, entries: entries() });
    expect(result.bytes).toBeGreaterThan(96 * 700 * 1024);
    // 16 MiB budget, plus at most 1 MiB gathered before a write, plus one entry in flight.
    expect(Math.max(...lags)).toBeLessThanOrEqual(21 * 1024 * 1024);
  });

  it("writes entries in the order given", async () => {
    const path = join(dir, "order.tar");
    const names = ["z.txt", ".update-mirror/manifest.json", "a.txt", "m/n.txt"];
    await writeArchive({ format: "tar", path, entries: names.map((name) => file(name, name)) });
    const reader = await openArchive(path);
    expect([...reader.entries.keys()]).toEqual(names);
    await reader.close();
  });
});
