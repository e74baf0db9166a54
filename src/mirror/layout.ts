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
  /** Verified content by SHA-256 (`objects/<hex>`): staged for a publish, or retained from earlier generations. */
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
