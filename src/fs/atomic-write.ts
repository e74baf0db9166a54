// Crash-safe file replacement: temp file, fsync, rename over the target, fsync the folder.
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsError } from "../core/errors.js";

/** fsyncs a folder so a rename inside it survives a power cut. Throws IoError/NotFoundError. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, "r");
    await handle.sync();
  } catch (err) {
    throw fsError(err, `syncing folder ${dir}`);
  } finally {
    await handle?.close();
  }
}

/**
 * Replaces `target` with `data` so that readers see the old bytes or the new ones, never a mix.
 * The temp file goes in `tmpDir` (must be on the target's file system) or beside the target.
 * On failure the temp file is removed and the target is untouched. Throws IoError/NotFoundError
 * naming the target.
 */
export async function writeFileAtomic(target: string, data: Uint8Array | string, options: { tmpDir?: string; mode?: number } = {}): Promise<void> {
  const tmpDir = options.tmpDir ?? dirname(target);
  const tmp = join(tmpDir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await mkdir(tmpDir, { recursive: true });
    const handle = await open(tmp, "wx", options.mode ?? 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw fsError(err, `writing ${target}`);
  }
  await fsyncDir(dirname(target));
}
