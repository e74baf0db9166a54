// Staging's receive on real files: verified bytes only, under the hash's shard, never writing into an existing object's inode.
import { createHash } from "node:crypto";
import { link, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IntegrityError } from "../../src/core/errors.js";
import { createStaging } from "../../src/stores/staging.js";
import { scratchDir } from "../support/cli.js";

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("staging"));
});
afterEach(async () => cleanup());

const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const body = (...parts: string[]) => Readable.from(parts.map((p) => Buffer.from(p)));
const dirsIn = (root: string) => ({ objects: join(root, "objects"), partial: join(root, "partial"), tmp: join(root, "tmp"), fileSystem: root });

// Small objects are written on the event loop on a local disk (as here), through libuv's threads elsewhere: both ways are run.
describe.each([
  { way: "on the event loop", smallWritesOnLoop: true },
  { way: "through the thread pool", smallWritesOnLoop: false },
])("staging, small objects written $way", ({ smallWritesOnLoop }) => {
  it("stages a small body under its hash in its shard, once, and refuses wrong, short and long ones leaving nothing", async () => {
    const stage = createStaging(dirsIn(dir), { smallWritesOnLoop });
    const data = Buffer.from("small body\n");
    const hash = sha(data);
    const expect1 = { size: data.length, sha256: hash, append: false };
    expect(await stage.receive("t", hash, body("small ", "body\n"), expect1)).toEqual({ sha256: hash, size: data.length });
    expect(stage.objectPath(hash)).toBe(join(dir, "objects", hash.slice(0, 2), hash));
    expect(await readFile(stage.objectPath(hash))).toEqual(data);
    // The same content again: already verified, nothing written twice, no error for the existing name.
    expect(await stage.receive("t", hash, body("small body\n"), expect1)).toEqual({ sha256: hash, size: data.length });

    const other = Buffer.from("other body\n");
    const bad = [
      body("wrong body\n"),
      body("short"),
      body("other body\n", "and more"),
    ];
    for (const b of bad) await expect(stage.receive("t", sha(other), b, { size: other.length, sha256: sha(other), append: false })).rejects.toBeInstanceOf(IntegrityError);
    expect(await stage.hasObject(sha(other), other.length)).toBe(false);
    const files = (await readdir(join(dir, "objects"), { recursive: true })).filter((n) => /[0-9a-f]{64}$/.test(n));
    expect(files).toEqual([join(hash.slice(0, 2), hash)]);
    expect(await readdir(join(dir, "tmp"))).toEqual([]);
  });

  it("replaces a torn object an earlier process left by rename, never writing into its inode (it may be a published file)", async () => {
    const data = Buffer.from("the right bytes\n");
    const hash = sha(data);
    const published = join(dir, "published.bin");
    await writeFile(published, "the wrong bytes\n");
    const object = join(dir, "objects", hash.slice(0, 2), hash);
    await mkdir(dirname(object), { recursive: true });
    await link(published, object);

    const stage = createStaging(dirsIn(dir), { smallWritesOnLoop });
    expect(await stage.receive("t", hash, body(data.toString()), { size: data.length, sha256: hash, append: false })).toEqual({ sha256: hash, size: data.length });
    expect(await readFile(object)).toEqual(data);
    expect(await readFile(published, "utf8")).toBe("the wrong bytes\n");
    expect(await stage.hasObject(hash, data.length)).toBe(true);
  });

  it("replaces an object that appeared after staging was listed the same way, never writing into its inode", async () => {
    const data = Buffer.from("late arrival\n");
    const hash = sha(data);
    const stage = createStaging(dirsIn(dir), { smallWritesOnLoop });
    await stage.ensureDirs();
    expect(await stage.holds(hash)).toBe(false);
    const published = join(dir, "published.bin");
    await writeFile(published, "something else\n");
    await link(published, stage.objectPath(hash));
    expect(await stage.receive("t", hash, body(data.toString()), { size: data.length, sha256: hash, append: false })).toEqual({ sha256: hash, size: data.length });
    expect(await readFile(stage.objectPath(hash))).toEqual(data);
    expect(await readFile(published, "utf8")).toBe("something else\n");
  });
});
