// SHA-256 and size of a file, streamed in 1 MiB reads: for checking content the tool did not just write itself.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

/** Hashes `file` whole. Throws the file system's own error (ENOENT, EACCES, ...) for the caller to map. */
export async function fileDigest(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), size };
}
