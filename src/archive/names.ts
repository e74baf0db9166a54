// Which entry names an archive may carry: the safe-path rules, plus the mirror's own metadata folder.
import { MAX_PATH_BYTES, METADATA_DIR, unsafePathReason } from "../core/safe-path.js";

const METADATA_PREFIX = `${METADATA_DIR}/`;

/**
 * Returns the rule an archive entry name breaks, or undefined when it may be written or read.
 * Archives carry the mirror's metadata (manifest, signature, SHA256SUMS) under `.update-mirror/`,
 * which payload paths may not use; so a name there is checked as a payload path below that folder.
 * What the importer does with those entries is its decision, not the archive layer's.
 */
export function archiveNameReason(name: string): string | undefined {
  if (!name.startsWith(METADATA_PREFIX)) return unsafePathReason(name);
  if (Buffer.byteLength(name, "utf8") > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  const reason = unsafePathReason(name.slice(METADATA_PREFIX.length));
  return reason === undefined ? undefined : `${METADATA_PREFIX}...: ${reason}`;
}

/** Same as archiveNameReason for a folder name (a folder entry's trailing '/' already removed). */
export function archiveFolderNameReason(name: string): string | undefined {
  return name === METADATA_DIR ? undefined : archiveNameReason(name);
}

/** A name as archives store it, without the "./" that `tar -C dir .` puts in front of every entry. */
export function stripDotSlash(name: string): string {
  let out = name;
  while (out.startsWith("./")) out = out.slice(2);
  return out;
}
