// Tests for openArchive: round trips through our writer (zip/tar, split or not), archives of other tools, and damaged data.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openArchive } from "../../src/archive/reader.js";
import { writeArchive } from "../../src/archive/writer.js";
import { InputRefusedError, IntegrityError, NotFoundError } from "../../src/core/errors.js";
import { inputsOf, readEntry, sampleTree, sha256, type Tree } from "../support/archive-tree.js";
import { hasCommand, scratchDir } from "../support/cli.js";
import { buildWithPython, hasPython } from "../support/hostile-archives.js";

const run = promisify(execFile);
let dir: string;
let cleanup: () => Promise<void>;
let tree: Tree;
beforeAll(async () => {
  ({ dir, cleanup } = await scratchDir("archive-reader"));
  tree = sampleTree();
});
afterAll(async () => cleanup());

let counter = 0;
const fresh = async () => {
  counter += 1;
  const folder = join(dir, `case-${counter}`);
  await mkdir(folder);
  return folder;
};

async function expectTree(path: string, expected: Tree): Promise<void> {
  const reader = await openArchive(path);
  try {
    expect([...reader.entries.keys()]).toEqual(expected.map(([name]) => name));
    for (const [name, data] of expected) {
      expect(reader.entries.get(name)?.size).toBe(data.length);
      // Compared as hashes: deep equality of large Buffers is slow in the test runner.
      expect(sha256(await readEntry(reader, name)), name).toBe(sha256(data));
      for (const offset of new Set([1, Math.floor(data.length / 2), data.length - 1, data.length].filter((n) => n > 0 && n <= data.length))) {
        expect(sha256(await readEntry(reader, name, offset)), `${name} from ${offset}`).toBe(sha256(data.subarray(offset)));
      }
    }
  } finally {
    await reader.close();
  }
}

describe("round trip through writeArchive and openArchive", () => {
  for (const format of ["zip", "tar"] as const) {
    for (const splitSize of [undefined, 64 * 1024, 1_000_000]) {
      for (const how of ["buffer", "stream"] as const) {
        it(`${format}, ${splitSize === undefined ? "one file" : `split at ${splitSize}`}, ${how} inputs: every entry comes back byte-identical, from any offset`, async () => {
          const folder = await fresh();
          const path = join(folder, `full.${format}`);
          const written = await writeArchive({ format, path, splitSize, entries: inputsOf(tree, how) });
          if (splitSize !== undefined) expect(written.volumes.length).toBeGreaterThan(1);
          await expectTree(path, tree);
          if (splitSize !== undefined) await expectTree(`${path}.001`, tree);
          const reader = await openArchive(path);
          expect(reader.format).toBe(format);
          expect(reader.volumes).toEqual(written.volumes);
          await reader.close();
        });
      }
    }
  }

  it("tells the format by content, not by name", async () => {
    const folder = await fresh();
    await writeArchive({ format: "tar", path: join(folder, "really-a-tar.zip"), entries: inputsOf(tree.slice(0, 3), "buffer") });
    await writeArchive({ format: "zip", path: join(folder, "really-a-zip.tar"), entries: inputsOf(tree.slice(0, 3), "buffer") });
    const tar = await openArchive(join(folder, "really-a-tar.zip"));
    const zip = await openArchive(join(folder, "really-a-zip.tar"));
    expect([tar.format, zip.format]).toEqual(["tar", "zip"]);
    await Promise.all([tar.close(), zip.close()]);
  });

  it("refuses unknown names and offsets outside the entry, and fails reads after close", async () => {
    const folder = await fresh();
    const path = join(folder, "a.zip");
    await writeArchive({ format: "zip", path, entries: inputsOf(tree.slice(0, 4), "buffer") });
    const reader = await openArchive(path);
    expect(() => reader.open("nope.txt")).toThrow(NotFoundError);
    expect(() => reader.open("nope.txt")).toThrow(/"nope\.txt": not in archive .*a\.zip/);
    expect(() => reader.open("with space/file name.txt", 7)).toThrow(RangeError);
    expect(() => reader.open("with space/file name.txt", -1)).toThrow(RangeError);
    expect((await readEntry(reader, "with space/file name.txt", 6)).length).toBe(0);
    await reader.close();
    await expect(readEntry(reader, "with space/file name.txt")).rejects.toThrow(/closed/);
  });
});

describe("damaged archives", () => {
  it("says not found for a missing archive, and refuses content that is neither zip nor tar", async () => {
    const folder = await fresh();
    await expect(openArchive(join(folder, "none.zip"))).rejects.toBeInstanceOf(NotFoundError);
    await writeFile(join(folder, "noise.zip"), randomBytes(5000));
    const err = await openArchive(join(folder, "noise.zip")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputRefusedError);
    expect((err as Error).message).toMatch(/noise\.zip[\s\S]*neither a zip nor a tar/);
    await writeFile(join(folder, "empty.tar"), "");
    await expect(openArchive(join(folder, "empty.tar"))).rejects.toBeInstanceOf(InputRefusedError);
  });

  it("checks the CRC-32 of a whole zip entry read: a flipped byte fails the read with IntegrityError", async () => {
    const folder = await fresh();
    const path = join(folder, "crc.zip");
    const data = Buffer.alloc(100_000, 0x61);
    await writeArchive({ format: "zip", path, entries: [{ name: "a.bin", size: data.length, mtime: new Date(), data }] });
    const bytes = await readFile(path);
    const at = bytes.indexOf(data.subarray(0, 64)) + 5000;
    bytes[at] = 0x62;
    await writeFile(path, bytes);
    const reader = await openArchive(path);
    const err = await readEntry(reader, "a.bin").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toMatch(/"a\.bin" in archive .*crc\.zip: CRC-32 [0-9a-f]{8} does not match/);
    await reader.close();
  });

  it("fails a read with IntegrityError when a volume shrank after opening", async () => {
    const folder = await fresh();
    const path = join(folder, "shrink.tar");
    const written = await writeArchive({ format: "tar", path, splitSize: 64 * 1024, entries: inputsOf(tree, "buffer") });
    const reader = await openArchive(path);
    await truncate(written.volumes[written.volumes.length - 2] ?? "", 1000);
    await expect(readEntry(reader, "mid/1500k.bin")).rejects.toBeInstanceOf(IntegrityError);
    await reader.close();
  });

  it("refuses a split set with a volume cut short (sizes no longer add up) as damaged, naming the set", async () => {
    const folder = await fresh();
    const path = join(folder, "cut.zip");
    const written = await writeArchive({ format: "zip", path, splitSize: 64 * 1024, entries: inputsOf(tree, "buffer") });
    await truncate(written.volumes[1] ?? "", 30_000);
    const err = await openArchive(`${path}.001`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputRefusedError);
    expect((err as Error).message).toMatch(/cut\.zip\.001 \.\.\. cut\.zip\.\d{3} \(\d+ volumes\)/);
  });
});

describe("archives written by other tools", () => {
  const files: Tree = [
    ["plain.txt", Buffer.from("plain")],
    ["ünïcødé/naïve.txt", Buffer.from("unicode")],
    [`${"long-folder-name/".repeat(8)}and-a-long-file-name-beyond-one-hundred-bytes.bin`, randomBytes(5000)],
    ["compressible.txt", Buffer.from("abc".repeat(100_000))],
    ["empty", Buffer.alloc(0)],
  ];

  it.skipIf(!hasPython)("reads Python zipfile archives, stored and deflated (offsets served by inflating and skipping)", async () => {
    const folder = await fresh();
    for (const format of ["zip", "zip-deflate"] as const) {
      const path = join(folder, `${format}.zip`);
      await buildWithPython(path, format, Object.fromEntries(files));
      await expectTree(path, files);
    }
  });

  it.skipIf(!hasPython)("reads Python tarfile archives in ustar, GNU (long names) and pax (global header) formats", async () => {
    const folder = await fresh();
    for (const format of ["tar-gnu", "tar-pax"] as const) {
      const path = join(folder, `${format}.tar`);
      await buildWithPython(path, format, Object.fromEntries(files));
      await expectTree(path, files);
    }
    const ustar = join(folder, "ustar.tar");
    const ascii = files.filter(([name]) => !/[^\x20-\x7e]/.test(name));
    await buildWithPython(ustar, "tar", Object.fromEntries(ascii));
    await expectTree(ustar, ascii);
  });

  it.skipIf(!hasCommand("tar"))("reads GNU tar's output of `tar -cf x.tar -C dir .` (entries named ./...), with folder entries, in each format", async () => {
    const folder = await fresh();
    const src = join(folder, "src");
    for (const [name, data] of files) {
      await mkdir(join(src, name, ".."), { recursive: true });
      await writeFile(join(src, name), data);
    }
    for (const format of ["gnu", "posix", "ustar"]) {
      if (format === "ustar") await rename(join(src, "ünïcødé"), join(folder, "moved-away"));
      const path = join(folder, `${format}.tar`);
      await run("tar", ["--format", format, "-cf", path, "-C", src, "."]);
      const reader = await openArchive(path);
      const expected = files.filter(([name]) => format !== "ustar" || !name.startsWith("ünïcødé"));
      expect([...reader.entries.keys()].sort()).toEqual(expected.map(([name]) => name).sort());
      for (const [name, data] of expected) {
        const offset = Math.min(1, data.length);
        expect(sha256(await readEntry(reader, name, offset)), name).toBe(sha256(data.subarray(offset)));
      }
      await reader.close();
    }
  });

  it("reads a tar split by `split -b` and named from its first volume", async () => {
    const folder = await fresh();
    const path = join(folder, "whole.tar");
    await writeArchive({ format: "tar", path, entries: inputsOf(tree, "buffer") });
    await run("split", ["-d", "-a", "3", "-b", "100000", path, join(folder, "parts.tar.")]);
    // split -d counts from 000; 7-Zip and we count from 001: renumber.
    const { stdout } = await run("sh", ["-c", `cd "${folder}" && ls parts.tar.* | sort -r`]);
    for (const name of stdout.trim().split("\n")) {
      const n = Number(name.slice("parts.tar.".length)) + 1;
      await rename(join(folder, name), join(folder, `parts.tar.${String(n).padStart(3, "0")}`));
    }
    await expectTree(join(folder, "parts.tar.001"), tree);
  });
});
