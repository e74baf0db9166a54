// Folders inside a real server's tree (an FTP home, an SMB share) that tests fill as root and the server's user reads.
import { chmod, cp, mkdtemp, rm } from "node:fs/promises";
import { basename, join } from "node:path";

/** A fresh folder below `root`, readable by the server's user; `name` is its folder name on the server. */
export async function servedFolder(root: string, prefix: string): Promise<{ dir: string; name: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(root, `${prefix}-`));
  await chmod(dir, 0o755);
  return { dir, name: basename(dir), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Copies a published tree into the served folder `dir` (modes kept, so the server's user can read it). */
export async function copyTree(from: string, dir: string): Promise<void> {
  await cp(from, dir, { recursive: true });
  await chmod(dir, 0o755);
}
