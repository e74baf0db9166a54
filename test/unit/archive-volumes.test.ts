// Tests for split-volume naming and finding a volume set: consecutive from 001, named by its base or first volume.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { describeVolumes, resolveVolumes, volumeName, volumeNumber } from "../../src/archive/volumes.js";
import { InputRefusedError, NotFoundError } from "../../src/core/errors.js";
import { scratchDir } from "../support/cli.js";

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("volumes"));
});
afterEach(async () => cleanup());

const touch = (...names: string[]) => Promise.all(names.map((name) => writeFile(join(dir, name), name)));

describe("volume names", () => {
  it("numbers volumes from 001 with at least three digits, as 7-Zip and split -d do", () => {
    expect(volumeName("/m/full.tar", 1)).toBe("/m/full.tar.001");
    expect(volumeName("/m/full.tar", 42)).toBe("/m/full.tar.042");
    expect(volumeName("/m/full.tar", 1000)).toBe("/m/full.tar.1000");
    expect(volumeNumber("full.tar", "full.tar.007")).toBe(7);
    expect(volumeNumber("full.tar", "full.tar.1000")).toBe(1000);
    for (const other of ["full.tar", "full.tar.07", "full.tar.0007", "full.tar.000", "full.tar.001.partial", "full.tar.abc", "xfull.tar.001", "full.tar.zip.001"]) {
      expect(volumeNumber("full.tar", other), other).toBeUndefined();
    }
    expect(describeVolumes(["/m/a.zip"])).toBe("/m/a.zip");
    expect(describeVolumes(["/m/a.zip.001", "/m/a.zip.002"])).toBe("/m/a.zip.001 ... a.zip.002 (2 volumes)");
  });
});

describe("resolveVolumes", () => {
  it("takes a plain file as it is, even when its name ends in digits", async () => {
    await touch("full.tar", "data.123");
    expect(await resolveVolumes(join(dir, "full.tar"))).toEqual([join(dir, "full.tar")]);
    expect(await resolveVolumes(join(dir, "data.123"))).toEqual([join(dir, "data.123")]);
  });

  it("finds a split set from its base name or its first volume, in numeric order", async () => {
    await touch("full.tar.002", "full.tar.001", "full.tar.003", "full.tar.001.partial", "full.tar.03", "other.tar.004");
    const expected = ["full.tar.001", "full.tar.002", "full.tar.003"].map((name) => join(dir, name));
    expect(await resolveVolumes(join(dir, "full.tar"))).toEqual(expected);
    expect(await resolveVolumes(join(dir, "full.tar.001"))).toEqual(expected);
  });

  it("refuses a set with a missing volume, naming it", async () => {
    await touch("full.zip.001", "full.zip.002", "full.zip.004");
    const err = await resolveVolumes(join(dir, "full.zip")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputRefusedError);
    expect((err as Error).message).toMatch(/full\.zip\.003 is missing/);
    await expect(resolveVolumes(join(dir, "full.zip.001"))).rejects.toThrow(/full\.zip\.003 is missing/);
  });

  it("refuses a set that does not start at 001, and a set opened from a later volume", async () => {
    await touch("late.tar.002", "late.tar.003");
    await expect(resolveVolumes(join(dir, "late.tar"))).rejects.toThrow(/late\.tar\.001 is missing/);
    await touch("set.tar.001", "set.tar.002");
    const err = await resolveVolumes(join(dir, "set.tar.002")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputRefusedError);
    expect((err as Error).message).toMatch(/open it from its first volume, set\.tar\.001/);
  });

  it("says not found when there is neither the file nor volumes, and refuses a folder", async () => {
    await expect(resolveVolumes(join(dir, "none.tar"))).rejects.toBeInstanceOf(NotFoundError);
    await expect(resolveVolumes(join(dir, "missing-folder", "x.zip"))).rejects.toBeInstanceOf(NotFoundError);
    await mkdir(join(dir, "folder.tar"));
    await expect(resolveVolumes(join(dir, "folder.tar"))).rejects.toThrow(/is a folder, not an archive/);
  });
});
