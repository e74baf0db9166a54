// The one-writer lock of a mirror folder: a lock file made by hard-linking a fully written temp file.
import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fsError } from "../core/errors.js";
import { acquireLockFile } from "./lock-file.js";

/**
 * Takes the lock at `file` for `command` (see acquireLockFile). Throws LockedError naming the holder,
 * IoError when the lock cannot be written. Returns the release function.
 */
export async function acquireLock(file: string, command: string, label: string): Promise<() => Promise<void>> {
  return acquireLockFile(
    {
      where: file,
      async create(text) {
        const tmp = join(dirname(file), `.lock.${process.pid}.${randomBytes(4).toString("hex")}`);
        try {
          await mkdir(dirname(file), { recursive: true });
          await writeFile(tmp, text);
        } catch (err) {
          throw fsError(err, `${label}: creating the lock`);
        }
        try {
          await link(tmp, file);
          return true;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
          throw fsError(err, `${label}: taking the lock ${file}`);
        } finally {
          await unlink(tmp).catch(() => undefined);
        }
      },
      read: () => readFile(file, "utf8").catch(() => undefined),
      remove: () => unlink(file),
    },
    command,
    label,
  );
}
