// Payload trees of mirrors and endpoint sets as path -> sha256, for "exactly this set, never a mix" comparisons in the pull tests; and the objects a store holds.
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * Every payload entry under `root` (following `root` itself when it is a link, as a reader of an
 * endpoint does) as relative path -> sha256 of its bytes; anything not a regular file gets a marker,
 * so it shows up as a difference. The top-level `.update-mirror/` is left out.
 */
export async function payloadTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const rel = join(entry.parentPath, entry.name).slice(root.length + 1).split("\\").join("/");
    if (rel === ".update-mirror" || rel.startsWith(".update-mirror/")) continue;
    if (entry.isDirectory()) continue;
    out[rel] = entry.isFile() ? createHash("sha256").update(await readFile(join(root, rel))).digest("hex") : `not a regular file (${entry.isSymbolicLink() ? "link" : "other"})`;
  }
  return out;
}

/** The same paths with the same bytes, whatever order the folders were listed in. */
export function sameTree(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

/** Which of the named trees `tree` is exactly, or "mix" when it is none of them. */
export function whichTree(tree: Record<string, string>, candidates: Record<string, Record<string, string>>): string {
  for (const [name, candidate] of Object.entries(candidates)) if (sameTree(tree, candidate)) return name;
  return "mix";
}

/** The objects staged or retained in a store's objects folder (below its shard folders); [] when there is no such folder. */
export async function objectFiles(objectsDir: string): Promise<string[]> {
  const names = await readdir(objectsDir, { recursive: true }).catch(() => [] as string[]);
  return names.filter((name) => /[0-9a-f]{64}$/.test(name)).sort();
}
