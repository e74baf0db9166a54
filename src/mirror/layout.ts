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
    tmpDir: join(privateDir, "tmp"),
  };
}
