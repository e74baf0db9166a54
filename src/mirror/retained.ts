// Read-only view of what a folder mirror retains privately: previous manifests and content objects by hash.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fsError } from "../core/errors.js";
import { mirrorLayout, objectName } from "./layout.js";

/**
 * Where a folder store keeps retained state below `.update-mirror/private/` (see docs/architecture.md):
 * `manifests/<version>.json` for each retained previous generation, and `objects/<ab>/<sha256>` for
 * verified content (staged for a publish, or kept for a retained generation). Readers other than the
 * store must treat both as read-only, and must not trust an object's bytes without checking them:
 * an object may still be being written, or torn by a crash.
 */
export interface RetainedLayout {
  manifestsDir: string;
  objectsDir: string;
  /** The retained manifest of `version`. */
  manifest(version: number): string;
  /** The object holding content with this SHA-256 (64 lowercase hex digits). */
  object(sha256: string): string;
}

export function retainedLayout(root: string): RetainedLayout {
  const { manifestsDir, objectsDir } = mirrorLayout(root);
  return {
    manifestsDir,
    objectsDir,
    manifest: (version) => join(manifestsDir, `${version}.json`),
    object: (sha256) => join(objectsDir, objectName(sha256)),
  };
}

/** Versions of the retained previous manifests, newest first; empty when none are kept. Throws IoError. */
export async function retainedVersions(root: string): Promise<number[]> {
  const dir = retainedLayout(root).manifestsDir;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw fsError(err, dir);
  }
  return versionsFromNames(names);
}

/** The versions named by `<version>.json` entries of a retained-manifests folder, newest first. */
export function versionsFromNames(names: readonly string[]): number[] {
  return names
    .map((n) => /^(\d+)\.json$/.exec(n)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number)
    .filter((v) => Number.isSafeInteger(v))
    .sort((a, b) => b - a);
}

const SHA256_KEY = Buffer.from('"sha256":"');

/**
 * Adds the SHA-256 of every file the retained manifest of `version` lists to `into`, read straight
 * from its canonical bytes: parsing a generation of 40,000 files in full, only to learn which objects
 * it needs, costs tens of MB of heap. Exact for canonical JSON, where a quote inside a path or tag is
 * always escaped, so the key can only occur as a key. Throws IoError/NotFoundError naming the file.
 */
export async function addRetainedHashes(root: string, version: number, into: Set<string>): Promise<void> {
  const file = retainedLayout(root).manifest(version);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw fsError(err, `generation ${version} (${file})`);
  }
  addManifestHashes(bytes, into);
}

/** addRetainedHashes for manifest bytes already read (canonical JSON). */
export function addManifestHashes(bytes: Buffer, into: Set<string>): void {
  for (let at = bytes.indexOf(SHA256_KEY); at >= 0; at = bytes.indexOf(SHA256_KEY, at + SHA256_KEY.length + 64)) {
    const start = at + SHA256_KEY.length;
    into.add(bytes.toString("latin1", start, start + 64));
  }
}
