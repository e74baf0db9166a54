// Archive formats and telling them apart by content (zip signatures, the tar ustar magic), not by file name.
import { looksLikeTar } from "./tar-index.js";
import type { VolumeSet } from "./volume-set.js";

/** The archive formats written and read. */
export type ArchiveFormat = "zip" | "tar";

const ZIP_LOCAL_HEADER = Buffer.from("PK\x03\x04", "latin1");
const ZIP_END_OF_CENTRAL_DIRECTORY = Buffer.from("PK\x05\x06", "latin1");
// The end-of-central-directory record is 22 bytes plus a comment of at most 65,535.
const ZIP_TAIL_BYTES = 22 + 0xffff;

/**
 * The format of the archive in `set`, from its first bytes (a zip local header or an empty zip's end
 * record; a tar header with ustar magic at byte 257, or the all-zero end of an empty tar), else from
 * a zip end record near the end (a zip with something in front of it). Undefined when neither.
 * Throws IoError/IntegrityError from the reads.
 */
export async function detectFormat(set: VolumeSet): Promise<ArchiveFormat | undefined> {
  const head = Buffer.from(await set.readAt(0, 512));
  const start = head.subarray(0, 4);
  if (start.equals(ZIP_LOCAL_HEADER) || start.equals(ZIP_END_OF_CENTRAL_DIRECTORY)) return "zip";
  if (looksLikeTar(head)) return "tar";
  if (head.length === 512 && set.size % 512 === 0 && head.every((byte) => byte === 0)) return "tar";
  const tailStart = Math.max(0, set.size - ZIP_TAIL_BYTES);
  const tail = await set.readAt(tailStart, set.size - tailStart);
  return tail.lastIndexOf(ZIP_END_OF_CENTRAL_DIRECTORY) >= 0 ? "zip" : undefined;
}
