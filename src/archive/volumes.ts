// Names of split volumes (`x.tar.001`, `x.tar.002`, ... as 7-Zip and `split -d` write them) and finding a set.
import { readdir, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsError, InputRefusedError, NotFoundError } from "../core/errors.js";

const VOLUME_SUFFIX = /\.(\d{3,})$/;

/** The name of volume `n` (from 1) of the archive `path`: `path.001`; beyond 999 the number simply grows. */
export function volumeName(path: string, n: number): string {
  return `${path}.${String(n).padStart(3, "0")}`;
}

/** The volume number of `name` when it is `<base>.NNN` written the way volumeName writes it, else undefined. */
export function volumeNumber(base: string, name: string): number | undefined {
  if (!name.startsWith(`${base}.`)) return undefined;
  const match = VOLUME_SUFFIX.exec(name);
  if (!match || match.index !== base.length) return undefined;
  const n = Number(match[1]);
  return n >= 1 && volumeName(base, n) === name ? n : undefined;
}

/** Every `<base>.NNN` volume beside `path` (by number); none when the folder is missing. Throws IoError. */
export async function listVolumes(path: string): Promise<Map<number, string>> {
  const dir = dirname(path);
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw fsError(err, `listing ${dir}`);
  }
  const found = new Map<number, string>();
  for (const name of names) {
    const n = volumeNumber(base, name);
    if (n !== undefined) found.set(n, join(dir, name));
  }
  return found;
}

/** A short label for a volume set in messages: the file, or `first ... last (N volumes)`. */
export function describeVolumes(volumes: readonly string[]): string {
  if (volumes.length === 1) return volumes[0] ?? "";
  return `${volumes[0]} ... ${basename(volumes[volumes.length - 1] ?? "")} (${volumes.length} volumes)`;
}

/**
 * The files making up the archive the user named: `x.tar` itself when it is a file, otherwise its
 * split volumes `x.tar.001`, `x.tar.002`, ...; a path ending in `.001` names its set directly.
 * Volumes must be consecutive from 001. Throws NotFoundError when nothing is there, InputRefusedError
 * for a set with a gap or one named from another volume than 001, IoError for unreadable folders.
 */
export async function resolveVolumes(path: string): Promise<string[]> {
  const match = VOLUME_SUFFIX.exec(path);
  if (match) {
    const base = path.slice(0, match.index);
    const n = volumeNumber(basename(base), basename(path));
    if (n === 1) return consecutive(base, await listVolumes(base));
    if (n !== undefined && (await listVolumes(base)).has(1)) {
      throw new InputRefusedError(`refusing ${path}`, [`it is volume ${n} of a split archive: open it from its first volume, ${basename(volumeName(base, 1))}`]);
    }
  }
  if (await isFile(path)) return [path];
  return consecutive(path, await listVolumes(path));
}

async function isFile(path: string): Promise<boolean> {
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw new InputRefusedError(`refusing ${path}`, ["is a folder, not an archive"]);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw fsError(err, `reading ${path}`);
  }
}

function consecutive(base: string, found: Map<number, string>): string[] {
  if (found.size === 0) throw new NotFoundError(`${base}: not found (neither the file nor split volumes ${basename(volumeName(base, 1))}, ...)`);
  const last = Math.max(...found.keys());
  const volumes: string[] = [];
  const missing: string[] = [];
  for (let n = 1; n <= last; n += 1) {
    const volume = found.get(n);
    if (volume === undefined) missing.push(basename(volumeName(base, n)));
    else volumes.push(volume);
  }
  if (missing.length > 0) {
    throw new InputRefusedError(`refusing split archive ${base}: volumes are missing (found ${found.size} of ${last})`, missing.map((name) => `volume ${name} is missing`));
  }
  return volumes;
}
