// Tests for walkTree: what is listed, what is refused (and how it is named), skipping, and bad roots.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { NotFoundError } from "../../src/core/errors.js";
import { walkTree } from "../../src/fs/walk.js";

const run = promisify(execFile);

let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "walk-test-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function makeTree(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(dir, ...rel.split("/"));
    await mkdir(path.dirname(abs), { recursive: true });
    await writeFile(abs, content);
  }
  return dir;
}

describe("walkTree", () => {
  test("lists nested files with awkward names, sorted, with POSIX relative paths", async () => {
    const nfd = "cafe\u0301.txt"; // decomposed é: must come back exactly so, not normalised
    const dir = await makeTree("names", {
      "b.txt": "bb",
      "a dir/with space.bin": "12345",
      "a dir/sub#1/50%.dat": "x",
      "ünïcødé/日本語/файл.txt": "hello",
      [`a dir/${nfd}`]: "nfd",
    });
    await mkdir(path.join(dir, "empty", "deeper"), { recursive: true });

    const { files, refused } = await walkTree(dir);

    expect(refused).toEqual([]);
    const paths = files.map((f) => f.path);
    expect(paths).toEqual([`a dir/${nfd}`, "a dir/sub#1/50%.dat", "a dir/with space.bin", "b.txt", "ünïcødé/日本語/файл.txt"]);
    expect(paths).toContain(`a dir/${nfd}`);
    expect(paths).not.toContain(`a dir/${nfd.normalize("NFC")}`);
    const space = files.find((f) => f.path === "a dir/with space.bin");
    expect(space?.size).toBe(5);
    expect(space?.absPath).toBe(path.join(dir, "a dir", "with space.bin"));
    expect(space?.mtimeMs).toBeGreaterThan(0);
  });

  test("refuses a symlink (to a file and to a folder) and a FIFO, naming each, without following", async () => {
    const dir = await makeTree("odd", { "real/file.txt": "data", "sub/keep.txt": "k" });
    await symlink(path.join(dir, "real", "file.txt"), path.join(dir, "sub", "link"));
    await symlink(path.join(dir, "real"), path.join(dir, "dirlink"));
    await run("mkfifo", [path.join(dir, "sub", "pipe")]);

    const { files, refused } = await walkTree(dir);

    expect(files.map((f) => f.path)).toEqual(["real/file.txt", "sub/keep.txt"]);
    expect(refused).toHaveLength(3);
    expect(refused).toContain("sub/link: symbolic link (not supported; replace it with the file it points to)");
    expect(refused).toContain("dirlink: symbolic link (not supported; replace it with the file it points to)");
    expect(refused.find((l) => l.startsWith("sub/pipe: "))).toMatch(/FIFO/);
  });

  test("refuses a name that is not valid UTF-8 instead of mangling it", async () => {
    const dir = await makeTree("bytes", { "ok.txt": "ok" });
    const bad = Buffer.concat([Buffer.from(`${dir}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from(".txt")]);
    try {
      await writeFile(bad, "x");
    } catch {
      return; // a file system that insists on UTF-8 names cannot hold such a file at all
    }
    await writeFile(path.join(dir, "real-\uFFFD.txt"), "a genuine U+FFFD in a valid name is fine");
    const { files, refused } = await walkTree(dir);
    expect(files.map((f) => f.path)).toEqual(["ok.txt", "real-\uFFFD.txt"]);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatch(/^bad-.*\.txt: name is not valid UTF-8/);
  });

  test("skip leaves out a metadata folder at the root (and what is in it), but not a same-named nested one", async () => {
    const dir = await makeTree("skip", {
      ".update-mirror/manifest.json": "{}",
      "data/.update-mirror/kept.txt": "k",
      "data/file.txt": "f",
      "drop-me.tmp": "t",
    });
    await symlink("nowhere", path.join(dir, ".update-mirror", "link"));
    const seen: [string, boolean][] = [];

    const { files, refused } = await walkTree(dir, {
      skip: (rel, isDir) => {
        seen.push([rel, isDir]);
        return rel === ".update-mirror" || rel.endsWith(".tmp");
      },
    });

    expect(files.map((f) => f.path)).toEqual(["data/.update-mirror/kept.txt", "data/file.txt"]);
    expect(refused).toEqual([]);
    expect(seen).toContainEqual([".update-mirror", true]);
    expect(seen).toContainEqual(["data/file.txt", false]);
    expect(seen.some(([rel]) => rel.startsWith(".update-mirror/"))).toBe(false);
  });

  test("an empty folder gives no files and no refusals", async () => {
    const dir = await makeTree("empty-root", {});
    expect(await walkTree(dir)).toEqual({ files: [], refused: [] });
  });

  test("a missing root is a NotFoundError naming it", async () => {
    const missing = path.join(root, "does-not-exist");
    const err = await walkTree(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain(missing);
  });

  test("a root that is a file is a NotFoundError naming it", async () => {
    const dir = await makeTree("file-root", { "f.txt": "x" });
    const file = path.join(dir, "f.txt");
    const err = await walkTree(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toBe(`${file}: not a directory`);
  });

  test("handles a wide and deep tree (more entries than the concurrency limit)", async () => {
    const files: Record<string, string> = {};
    for (let d = 0; d < 5; d++) for (let f = 0; f < 150; f++) files[`d${d}/e/f${f}.txt`] = `${d}-${f}`;
    const dir = await makeTree("wide", files);
    const result = await walkTree(dir);
    expect(result.files).toHaveLength(750);
    const paths = result.files.map((f) => f.path);
    expect(paths).toEqual([...paths].sort());
    expect(new Set(paths)).toEqual(new Set(Object.keys(files)));
  });
});
