// What statfs's type magic tells about a file system: its name, the largest file it accepts (FAT32: 4 GiB - 1 byte), whether it is a local disk.
import { statfs } from "node:fs/promises";
import { dirname } from "node:path";
import { fsError } from "../core/errors.js";

/** Largest file on FAT12/16/32 (vfat, msdos): the size field is 32 bits. */
export const FAT_MAX_FILE_BYTES = 4 * 1024 ** 3 - 1;
/** Largest file on classic HFS (not HFS+). */
export const HFS_MAX_FILE_BYTES = 2 * 1024 ** 3 - 1;

interface KnownFileSystem {
  name: string;
  maxFileSize?: number;
  /** Only ever mounted read-only here (optical media): not a place to write an export. */
  readOnlyMedium?: boolean;
  /** A kernel file system on a local block device or in memory, where a small write costs microseconds. */
  localDisk?: boolean;
}

// Magic numbers from linux/magic.h: the ones with a limit, the local disks, and others worth naming in a
// message. Removable media (FAT, exFAT, NTFS) are not marked local: a USB stick may stall a write for long.
const KNOWN: ReadonlyMap<number, KnownFileSystem> = new Map([
  [0x4d44, { name: "FAT (vfat/msdos)", maxFileSize: FAT_MAX_FILE_BYTES }],
  [0x4244, { name: "HFS", maxFileSize: HFS_MAX_FILE_BYTES }],
  [0x9660, { name: "ISO 9660", readOnlyMedium: true }],
  [0x15013346, { name: "UDF", readOnlyMedium: true }],
  [0x2011bab0, { name: "exFAT" }],
  [0x5346544e, { name: "NTFS" }],
  [0x7366746e, { name: "NTFS (ntfs3)" }],
  [0xef53, { name: "ext2/3/4", localDisk: true }],
  [0x58465342, { name: "XFS", localDisk: true }],
  [0x9123683e, { name: "btrfs", localDisk: true }],
  [0x01021994, { name: "tmpfs", localDisk: true }],
  [0xf2f52010, { name: "F2FS", localDisk: true }],
  [0x2fc12fc1, { name: "ZFS", localDisk: true }],
  [0xca451a4e, { name: "bcachefs", localDisk: true }],
  [0x794c7630, { name: "overlayfs", localDisk: true }],
  [0x65735546, { name: "FUSE" }],
  [0xff534d42, { name: "CIFS/SMB" }],
  [0xfe534d42, { name: "SMB2" }],
  [0x6969, { name: "NFS" }],
]);

/** What is known about a file system: its statfs type, a name when known, and its file size limit. */
export interface FileSystemInfo {
  type: number;
  name: string | undefined;
  /** Largest single file in bytes; undefined when there is no limit we know of. */
  maxFileSize: number | undefined;
  /** True for ISO 9660 and UDF, which are optical media mounted read-only: writing there fails (EROFS). */
  readOnlyMedium: boolean;
  /** True for the local disk file systems of Linux (ext4, XFS, btrfs, tmpfs...); false for network, FUSE and unknown ones. */
  localDisk: boolean;
}

/** What is known about the file system whose statfs type magic is `type` (pure; no I/O). */
export function fileSystemForType(type: number): FileSystemInfo {
  const known = KNOWN.get(type >>> 0);
  return { type: type >>> 0, name: known?.name, maxFileSize: known?.maxFileSize, readOnlyMedium: known?.readOnlyMedium ?? false, localDisk: known?.localDisk ?? false };
}

/**
 * The file system holding `path`, or, when `path` does not exist yet (an archive about to be written),
 * holding its nearest existing parent. Throws IoError/NotFoundError naming the path.
 */
export async function fileSystemOf(path: string): Promise<FileSystemInfo> {
  let probe = path;
  for (;;) {
    try {
      const info = fileSystemForType((await statfs(probe)).type);
      // The magic numbers are Linux's: elsewhere nothing is known to be a local disk.
      return process.platform === "linux" ? info : { ...info, localDisk: false };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const parent = dirname(probe);
      if ((code !== "ENOENT" && code !== "ENOTDIR") || parent === probe) throw fsError(err, `checking the file system of ${path}`);
      probe = parent;
    }
  }
}

/**
 * The largest single file the file system holding `path` accepts, when we know one (FAT: 4 GiB - 1
 * byte); undefined when there is no limit we know of. For a split archive, the volume size is what
 * must fit. Throws IoError/NotFoundError naming the path.
 */
export async function maxFileSizeFor(path: string): Promise<number | undefined> {
  return (await fileSystemOf(path)).maxFileSize;
}
