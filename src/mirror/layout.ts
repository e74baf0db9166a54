// Where a mirror keeps its metadata: public files in .update-mirror/, tool-private state below it.
import { join } from "node:path";
import { METADATA_DIR } from "../core/safe-path.js";

export { METADATA_DIR };
export const MANIFEST_NAME = "manifest.json";
export const SIGNATURE_NAME = "manifest.json.minisig";
export const SUMS_NAME = "SHA256SUMS";
/** Never listed, served or exported: staging, journal, lock, history. */
export const PRIVATE_DIR = "private";

/** Absolute paths of a mirror's metadata files, given the mirror root. */
export interface MirrorLayout {
  root: string;
  metadataDir: string;
  manifest: string;
  signature: string;
  sums: string;
  privateDir: string;
  /** Verified content by SHA-256 (`objects/<hex[0:2]>/<hex>`, see objectName): staged for a publish, or retained from earlier generations. */
  objectsDir: string;
  /** Retained previous manifests, `manifests/<version>.json`. */
  manifestsDir: string;
  /** Present only while a publish is under way (or was cut short and must be rolled forward). */
  journal: string;
  /** Temporary files for atomic writes; same file system as the mirror, so rename never crosses devices. */
  tmpDir: string;
}

export function mirrorLayout(root: string): MirrorLayout {
  const metadataDir = join(root, METADATA_DIR);
  const privateDir = join(metadataDir, PRIVATE_DIR);
  return {
    root,
    metadataDir,
    manifest: join(metadataDir, MANIFEST_NAME),
    signature: join(metadataDir, SIGNATURE_NAME),
    sums: join(metadataDir, SUMS_NAME),
    privateDir,
    objectsDir: join(privateDir, "objects"),
    manifestsDir: join(privateDir, "manifests"),
    journal: join(privateDir, "journal.json"),
    tmpDir: join(privateDir, "tmp"),
  };
}

/**
 * An object's name below the objects folder: `<first two hex digits>/<hex>`. Sharded so no folder
 * holds more than a few hundred objects at 40,000 files: creating names in one huge folder slows
 * down on ext4 (after deletions), NTFS, and Samba, whose case-insensitive names cost a scan of the
 * folder per new name. Always "/"-separated (path.join turns it into the platform's separator).
 */
export function objectName(sha256: string): string {
  return `${sha256.slice(0, 2)}/${sha256}`;
}

/** The names of the 256 shard folders. */
export const OBJECT_SHARDS: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** True for a shard folder's name in the objects folder. */
export const isObjectShard = (name: string): boolean => /^[0-9a-f]{2}$/.test(name);

/** True for an object's own name (64 lowercase hex digits). */
export const isObjectHash = (name: string): boolean => /^[0-9a-f]{64}$/.test(name);
