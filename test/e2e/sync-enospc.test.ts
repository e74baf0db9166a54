// A disk that fills up mid-run (a real size-limited tmpfs): the run fails with exit class "io", the previous mirror stays intact.
import { execFileSync } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IoError } from "../../src/core/errors.js";
import type { EngineEvent } from "../../src/engine/events.js";
import { SELECT_ALL } from "../../src/engine/select.js";
import { runSync, type SyncOptions } from "../../src/engine/sync.js";
import { verifyTree } from "../../src/mirror/verify-tree.js";
import { createFolderSource } from "../../src/sources/folder.js";
import { createFolderStore } from "../../src/stores/folder.js";
import { DEFAULT_RETRY } from "../../src/wrap/retry.js";
import { scratchDir, writeTree } from "../support/cli.js";

function engineOptions(up: string, mirror: string, emit: (e: EngineEvent) => void): SyncOptions {
  return {
    sources: [createFolderSource(up)],
    store: createFolderStore(mirror),
    selection: SELECT_ALL,
    tagRules: [],
    trust: { keys: [], allowRollback: false, allowExpired: false },
    dryRun: false,
    concurrency: 2,
    retry: { ...DEFAULT_RETRY, sleep: async () => undefined },
    maxDelete: { percent: 50 },
    keepGenerations: 2,
    emit,
  };
}

const why = process.getuid?.() !== 0 ? "not root" : undefined;
if (why) console.warn(`skipping ENOSPC test: mounting a tmpfs needs root (${why}); CI runs as root`);

describe.skipIf(why !== undefined)("disk full mid-run", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let disk: string;
  beforeAll(async () => {
    ({ dir, cleanup } = await scratchDir("enospc"));
    disk = join(dir, "disk");
    await mkdir(disk);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", disk]);
  });
  afterAll(async () => {
    execFileSync("umount", [disk]);
    await cleanup();
  });

  it("fails cleanly with the previous mirror intact, and succeeds once there is room", async () => {
    const up = join(dir, "up");
    const mirror = join(disk, "mirror");
    await writeTree(up, { "a.bin": Buffer.alloc(50_000, 1), "b.bin": Buffer.alloc(50_000, 2) });
    const options = (emit: (e: EngineEvent) => void) => engineOptions(up, mirror, emit);
    expect((await runSync(options(() => undefined))).result).toBe("updated");

    await writeTree(up, { "a.bin": Buffer.alloc(50_000, 9), "big.bin": Buffer.alloc(1_500_000, 3) });
    const filler = join(disk, "filler");
    // The plan passes its space check; then something else fills the disk as the first download starts.
    let filled = false;
    const failed = await runSync(
      options((e) => {
        if (e.type === "file:start" && !filled) {
          filled = true;
          const free = Number(execFileSync("df", ["--output=avail", "-B1", disk]).toString().split("\n")[1]);
          writeFileSync(filler, Buffer.alloc(Math.max(0, free - 64 * 1024)));
        }
      }),
    ).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(IoError);
    expect((failed as Error).message).toMatch(/no space left on device/);
    const between = await verifyTree(mirror);
    expect(between).toMatchObject({ ok: true, version: 1 });

    await rm(filler);
    expect((await runSync(options(() => undefined))).result).toBe("updated");
    expect(await verifyTree(mirror)).toMatchObject({ ok: true, version: 2, checkedFiles: 3 });
  });

  it("refuses before downloading when the plan cannot fit", async () => {
    const up = join(dir, "up-big");
    const mirror = join(disk, "mirror-big");
    await writeTree(up, { "huge.bin": Buffer.alloc(6_000_000, 5) });
    const err = await runSync(engineOptions(up, mirror, () => undefined)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IoError);
    expect((err as Error).message).toMatch(/the plan needs 6000000 bytes of space, only \d+ are free; nothing was changed/);
  });
});
