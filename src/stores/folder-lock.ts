// The one-writer lock of a mirror folder: a file naming its holder, taken over only from a dead process on this host.
import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { fsError, LockedError } from "../core/errors.js";

interface Holder {
  host: string;
  pid: number;
  started: string;
  command: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function readHolder(file: string): Promise<Holder | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as Holder;
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock at `file` for `command`. The lock is created by hard-linking a fully written temp
 * file, so no reader ever sees a half-written holder. A lock left by a dead process on this host is
 * taken over; any other holder gets LockedError naming host, PID, start time and command.
 * Returns the release function.
 */
export async function acquireLock(file: string, command: string, label: string): Promise<() => Promise<void>> {
  const me: Holder = { host: hostname(), pid: process.pid, started: new Date().toISOString(), command };
  const tmp = join(dirname(file), `.lock.${process.pid}.${randomBytes(4).toString("hex")}`);
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(tmp, `${JSON.stringify(me)}\n`);
  } catch (err) {
    throw fsError(err, `${label}: creating the lock`);
  }
  try {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        await link(tmp, file);
        return async () => {
          const holder = await readHolder(file);
          if (holder?.pid === me.pid && holder.started === me.started) await unlink(file).catch(() => undefined);
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw fsError(err, `${label}: taking the lock ${file}`);
      }
      const holder = await readHolder(file);
      if (holder && holder.host === me.host && !alive(holder.pid)) {
        await unlink(file).catch(() => undefined);
        continue;
      }
      const who = holder ? `PID ${holder.pid} on ${holder.host}, running "${holder.command}" since ${holder.started}` : "an unreadable lock";
      throw new LockedError(`${label} is locked by ${who}; if that process is gone, remove ${file}`);
    }
    throw new LockedError(`${label}: another process took the lock ${file} at the same moment; try again`);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
