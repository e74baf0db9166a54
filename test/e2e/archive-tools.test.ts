// Real tools check our archives: unzip -t and zipinfo (including zip64 by entry count), tar -tf/-xf, and split sets joined with cat.
import { execFile } from "node:child_process";
import { statfsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openArchive } from "../../src/archive/reader.js";
import { type ArchiveInput, writeArchive } from "../../src/archive/writer.js";
import { inputsOf, sampleTree, sha256, type Tree } from "../support/archive-tree.js";
import { hasCommand, scratchDir } from "../support/cli.js";

const run = promisify(execFile);
const hasUnzip = hasCommand("unzip") && hasCommand("zipinfo");
const hasTar = hasCommand("tar");
if (!hasUnzip) console.warn("skipping the unzip/zipinfo checks: unzip is not installed (apt-get install unzip; .ci/run installs it)");
if (!hasTar) console.warn("skipping the tar checks: tar is not installed");

let dir: string;
let cleanup: () => Promise<void>;
let tree: Tree;
beforeAll(async () => {
  ({ dir, cleanup } = await scratchDir("archive-tools"));
  tree = sampleTree();
});
afterAll(async () => cleanup());

const big = { maxBuffer: 256 << 20 };

async function joined(volumes: string[], out: string): Promise<string> {
  await run("sh", ["-c", 'out="$1"; shift; cat "$@" > "$out"', "sh", out, ...volumes]);
  return out;
}

async function expectExtracted(folder: string, expected: Tree): Promise<void> {
  for (const [name, data] of expected) expect(sha256(await readFile(join(folder, name))), name).toBe(sha256(data));
}

describe.skipIf(!hasUnzip)("zip archives pass unzip and zipinfo", () => {
  it("unsplit: unzip -t finds no errors, zipinfo lists every entry stored, unzip extracts identical bytes", async () => {
    const path = join(dir, "one.zip");
    await writeArchive({ format: "zip", path, entries: inputsOf(tree, "stream") });
    const test = await run("unzip", ["-t", path], big);
    expect(test.stdout).toMatch(/No errors detected/);
    const listing = await run("zipinfo", ["-1", path], big);
    expect(listing.stdout.trim().split("\n")).toEqual(tree.map(([name]) => name));
    const long = await run("zipinfo", [path], big);
    expect(long.stdout).toMatch(new RegExp(`number of entries: ${tree.length}`));
    expect(long.stdout).not.toMatch(/defN|deflated/);
    const out = join(dir, "one-extracted");
    await run("unzip", ["-q", path, "-d", out], big);
    await expectExtracted(out, tree);
  });

  it("split: the volumes joined with cat pass unzip -t", async () => {
    const path = join(dir, "split.zip");
    const written = await writeArchive({ format: "zip", path, splitSize: 200 * 1024, entries: inputsOf(tree, "buffer") });
    expect(written.volumes.length).toBeGreaterThan(5);
    const whole = await joined(written.volumes, join(dir, "split-joined.zip"));
    expect((await run("unzip", ["-t", whole], big)).stdout).toMatch(/No errors detected/);
  });

  it("zip64: 70,000 entries (over the 65,535 limit) pass unzip -t, zipinfo counts them, and we read them back", async () => {
    const path = join(dir, "many.zip");
    const mtime = new Date("2024-03-04T05:06:08Z");
    async function* many(): AsyncGenerator<ArchiveInput> {
      for (let i = 0; i < 70_000; i += 1) {
        const data = Buffer.from(`${i}\n`);
        yield { name: `d${Math.floor(i / 1000)}/f${i}.txt`, size: data.length, mtime, data };
      }
    }
    await writeArchive({ format: "zip", path, entries: many() });
    const info = await run("zipinfo", ["-h", path], big);
    expect(info.stdout).toMatch(/number of entries: 70000/);
    expect((await run("unzip", ["-tq", path], big)).stdout).toMatch(/No errors detected/);
    const reader = await openArchive(path);
    expect(reader.entries.size).toBe(70_000);
    const chunks: Uint8Array[] = [];
    for await (const chunk of reader.open("d69/f69999.txt")) chunks.push(chunk);
    expect(Buffer.concat(chunks).toString()).toBe("69999\n");
    await reader.close();
  });
});

// Over 4 GiB of data: minutes of disk time, so only on request (UM_SLOW_TESTS=1, which .ci/run sets),
// and only with room for one 4.3 GiB archive at a time.
const freeBytes = (() => {
  const fs = statfsSync(tmpdir());
  return fs.bavail * fs.bsize;
})();
const slow = process.env.UM_SLOW_TESTS === "1" && freeBytes > 8 * 1024 ** 3;
if (process.env.UM_SLOW_TESTS !== "1") console.warn("skipping the >4 GiB archive checks: set UM_SLOW_TESTS=1 to run them (about a minute, 4.3 GB of scratch disk at a time)");
else if (!slow) console.warn(`skipping the >4 GiB archive checks: only ${(freeBytes / 1024 ** 3).toFixed(1)} GiB free in ${tmpdir()}, 8 GiB needed`);

describe.skipIf(!slow || !hasUnzip || !hasTar)("archives over 4 GiB", () => {
  it.each(["zip", "tar"] as const)("%s: a 4.3 GiB entry and one after it pass the real tool and read back through us", async (format) => {
    const size = Math.floor(4.3 * 1024 ** 3);
    const chunk = Buffer.alloc(4 * 1024 * 1024, 0x5a);
    const mtime = new Date("2024-03-04T05:06:08Z");
    const path = join(dir, `huge.${format}`);
    const entries: ArchiveInput[] = [
      { name: "huge.bin", size, mtime, stream: async function* () { for (let at = 0; at < size; at += chunk.length) yield Buffer.from(chunk.subarray(0, Math.min(chunk.length, size - at))); } },
      { name: "after.txt", size: 5, mtime, data: Buffer.from("after") },
    ];
    const written = await writeArchive({ format, path, entries });
    expect(written.bytes).toBeGreaterThan(size);
    if (format === "zip") expect((await run("unzip", ["-tq", path], big)).stdout).toMatch(/No errors detected/);
    else expect((await run("tar", ["-tvf", path], big)).stdout).toMatch(/4617089843[\s\S]*after\.txt/);
    const reader = await openArchive(path);
    expect(reader.entries.get("huge.bin")?.size).toBe(size);
    let total = 0;
    for await (const part of reader.open("huge.bin")) total += part.length;
    expect(total).toBe(size);
    const tail: Uint8Array[] = [];
    for await (const part of reader.open("after.txt", 2)) tail.push(part);
    expect(Buffer.concat(tail).toString()).toBe("ter");
    await reader.close();
    await rm(path, { force: true });
  }, 600_000);
});

describe.skipIf(!hasTar)("tar archives pass GNU tar", () => {
  it("unsplit: tar -tf lists every entry in order, tar -xf extracts identical bytes", async () => {
    const path = join(dir, "one.tar");
    await writeArchive({ format: "tar", path, entries: inputsOf(tree, "stream") });
    const listing = await run("tar", ["-tf", path], big);
    expect(listing.stdout.trim().split("\n")).toEqual(tree.map(([name]) => name));
    const out = join(dir, "tar-extracted");
    await mkdir(out);
    await run("tar", ["-xf", path, "-C", out], big);
    await expectExtracted(out, tree);
  });

  it("split: the volumes joined with cat pass tar -tf and extract identically", async () => {
    const path = join(dir, "split.tar");
    const written = await writeArchive({ format: "tar", path, splitSize: 64 * 1024, entries: inputsOf(tree, "buffer") });
    const whole = await joined(written.volumes, join(dir, "split-joined.tar"));
    expect((await run("tar", ["-tf", whole], big)).stdout.trim().split("\n")).toEqual(tree.map(([name]) => name));
    const out = join(dir, "split-extracted");
    await mkdir(out);
    await run("tar", ["-xf", whole, "-C", out], big);
    await expectExtracted(out, tree);
  });
});
