// Reading a small body whole (a manifest, a signature, delta.json) with a hard cap, for every Source kind.
import { IntegrityError } from "../core/errors.js";

/**
 * Reads `body` into one Buffer. Throws IntegrityError naming `what` once it passes `limit` bytes;
 * leaving the loop early closes the body (a stream's iterator destroys it), so nothing more is read.
 */
export async function readCapped(body: AsyncIterable<Uint8Array>, limit: number, what: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > limit) throw new IntegrityError(`${what}: larger than the limit of ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
