// A second name for a file's content: a hard link where the file system has them, else a copy (FAT media, some shares).
import { copyFile, constants, link } from "node:fs/promises";

/** Makes `to` (which must not exist) hold `from`'s content. Throws the file system's own error. */
export async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EXDEV" && code !== "EMLINK") throw err;
    await copyFile(from, to, constants.COPYFILE_FICLONE);
  }
}
