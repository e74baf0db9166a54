// The one-writer lock of a store as a file naming its holder (host, PID, start, command), over whatever file system holds it.
import { hostname } from "node:os";
import { LockedError } from "../core/errors.js";

interface Holder {
  host: string;
  pid: number;
  started: string;
  command: string;
}

/** How a lock file is made, read and removed where the store lives. */
export interface LockFileOps {
  /** Where the lock is, for messages ("remove it if that process is gone"). */
  readonly where: string;
  /** Creates the lock with `text` in one step, so no reader sees it half-written; false when it exists. */
  create(text: string): Promise<boolean>;
  /** The lock's text, or undefined when it is missing or unreadable. */
  read(): Promise<string | undefined>;
  remove(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function readHolder(ops: LockFileOps): Promise<Holder | undefined> {
  try {
    const text = await ops.read();
    return text === undefined ? undefined : (JSON.parse(text) as Holder);
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock for `command`. A lock left by a dead process on this host is taken over; any other
 * holder gets LockedError naming host, PID, start time and command (a lock from another host cannot be
 * judged from here, so it is never taken over). Returns the release function, which removes the lock
 * only while it is still ours. Throws what `ops` throws.
 */
export async function acquireLockFile(ops: LockFileOps, command: string, label: string): Promise<() => Promise<void>> {
  const me: Holder = { host: hostname(), pid: process.pid, started: new Date().toISOString(), command };
  for (let attempt = 0; attempt < 2; attempt += 1) {
    if (await ops.create(`${JSON.stringify(me)}\n`)) {
      return async () => {
        const holder = await readHolder(ops);
        if (holder?.pid === me.pid && holder.started === me.started && holder.host === me.host) await ops.remove().catch(() => undefined);
      };
    }
    const holder = await readHolder(ops);
    if (holder && holder.host === me.host && !alive(holder.pid)) {
      await ops.remove().catch(() => undefined);
      continue;
    }
    const who = holder ? `PID ${holder.pid} on ${holder.host}, running "${holder.command}" since ${holder.started}` : "an unreadable lock";
    throw new LockedError(`${label} is locked by ${who}; if that process is gone, remove ${ops.where}`);
  }
  throw new LockedError(`${label}: another process took the lock ${ops.where} at the same moment; try again`);
}
