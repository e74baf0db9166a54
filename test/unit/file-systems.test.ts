// Tests for what statfs's type magic tells (limits, local disk): the mapping (pure) and the scratch disk.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAT_MAX_FILE_BYTES, fileSystemForType, fileSystemOf, maxFileSizeFor } from "../../src/fs/file-systems.js";
import { scratchDir } from "../support/cli.js";

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await scratchDir("fs-limits"));
});
afterAll(async () => cleanup());

describe("file-system limits", () => {
  it("maps statfs type magic numbers to limits (FAT: 4 GiB - 1; optical media read-only; others none known)", () => {
    expect(FAT_MAX_FILE_BYTES).toBe(4_294_967_295);
    expect(fileSystemForType(0x4d44)).toMatchObject({ name: "FAT (vfat/msdos)", maxFileSize: FAT_MAX_FILE_BYTES, readOnlyMedium: false });
    expect(fileSystemForType(0x9660)).toMatchObject({ name: "ISO 9660", maxFileSize: undefined, readOnlyMedium: true });
    expect(fileSystemForType(0x15013346)).toMatchObject({ name: "UDF", readOnlyMedium: true });
    expect(fileSystemForType(0x2011bab0)).toMatchObject({ name: "exFAT", maxFileSize: undefined });
    expect(fileSystemForType(0xef53)).toMatchObject({ name: "ext2/3/4", maxFileSize: undefined });
    expect(fileSystemForType(0x12345678)).toEqual({ type: 0x12345678, name: undefined, maxFileSize: undefined, readOnlyMedium: false, localDisk: false });
    // Local disks are marked; network, FUSE and removable media are not.
    expect([0xef53, 0x58465342, 0x9123683e, 0x01021994].map((t) => fileSystemForType(t).localDisk)).toEqual([true, true, true, true]);
    expect([0x6969, 0xfe534d42, 0x65735546, 0x4d44, 0x2011bab0].map((t) => fileSystemForType(t).localDisk)).toEqual([false, false, false, false, false]);
    // A magic above 2^31 reported as a negative 32-bit number still maps.
    expect(fileSystemForType(0xff534d42 | 0).name).toBe("CIFS/SMB");
  });

  it("knows no limit for the local scratch disk, and probes the nearest existing parent of a path to be", async () => {
    const info = await fileSystemOf(dir);
    expect(info.maxFileSize).toBeUndefined();
    // The scratch disk is where CI runs: ext4, overlayfs or tmpfs, all local.
    if (process.platform === "linux") expect(info.localDisk, `statfs type 0x${info.type.toString(16)}`).toBe(true);
    expect(await maxFileSizeFor(dir)).toBeUndefined();
    expect(await maxFileSizeFor(join(dir, "not", "yet", "full.tar"))).toBeUndefined();
    expect((await fileSystemOf(join(dir, "not", "yet", "full.tar"))).type).toBe(info.type);
  });
});
