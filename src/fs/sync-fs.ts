// Flushes a whole file system at once (syncfs via coreutils' `sync -f`): one call instead of an fsync per file.
import { execFile } from "node:child_process";

/**
 * Makes everything written on the file system holding `path` durable. Resolves false when `sync -f`
 * is unavailable (not coreutils, not Linux), so the caller can fall back to per-file fsyncs.
 */
export function syncFileSystem(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile("sync", ["--file-system", path], (err) => resolve(err === null));
  });
}
