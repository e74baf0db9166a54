// Reading and committing a mirror's public metadata: SHA256SUMS, signature, and the manifest written last.
import { mkdir, open, readFile, unlink } from "node:fs/promises";
import { fsError, ManifestError, NotFoundError } from "../core/errors.js";
import { MAX_MANIFEST_BYTES, type Manifest, parseManifest, serializeManifest } from "../core/manifest.js";
import { sha256SumsBytes } from "../core/sha256sums.js";
import type { ManifestSigner } from "../core/store.js";
import type { SecretKey } from "../crypto/keys.js";
import { defaultTrustedComment, signDetached } from "../crypto/minisign.js";
import { writeFileAtomic } from "../fs/atomic-write.js";
import { MANIFEST_NAME, mirrorLayout, SIGNATURE_NAME, SUMS_NAME } from "./layout.js";

export interface LoadedManifest {
  manifest: Manifest;
  /** The exact bytes read, which a signature covers. */
  bytes: Buffer;
}

/**
 * Reads and checks the manifest of the mirror at `root`. Returns undefined when the mirror has none.
 * Throws ManifestError (invalid or oversized manifest, naming the file) or IoError.
 */
export async function readMirrorManifest(root: string): Promise<LoadedManifest | undefined> {
  const file = mirrorLayout(root).manifest;
  let bytes: Buffer;
  try {
    const handle = await open(file, "r");
    try {
      // Check the size before reading so a hostile multi-gigabyte manifest is refused unread.
      const { size } = await handle.stat();
      if (size > MAX_MANIFEST_BYTES) throw new ManifestError(`${file}: manifest is ${size} bytes, more than the limit of ${MAX_MANIFEST_BYTES}`);
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (err) {
    const mapped = fsError(err, file);
    if (mapped instanceof NotFoundError) return undefined;
    throw mapped;
  }
  return { manifest: parseManifest(bytes, file), bytes };
}

/** Reads the detached signature beside the manifest, or undefined when there is none. Throws IoError. */
export async function readMirrorSignature(root: string): Promise<string | undefined> {
  const file = mirrorLayout(root).signature;
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    const mapped = fsError(err, file);
    if (mapped instanceof NotFoundError) return undefined;
    throw mapped;
  }
}

/**
 * Publishes `manifest` as the mirror's committed state. SHA256SUMS and the signature (or the removal
 * of a stale one) come first and the manifest last, since the manifest's rename is the commit point:
 * a crash before it leaves the previous manifest in force. A reader that catches the instant between
 * the signature and the manifest sees a mismatch and should read both again. `options.bytes`, when
 * given, must be the manifest's canonical bytes (serializeManifest's), which a caller that has them
 * passes so a large manifest is not serialized again; temp files go in `options.tmpDir` (same file
 * system; default the mirror's private tmp). Throws IoError.
 */
export async function commitMirrorMetadata(root: string, manifest: Manifest, sign?: ManifestSigner, options: { bytes?: Buffer; tmpDir?: string } = {}): Promise<Buffer> {
  const layout = mirrorLayout(root);
  const tmpDir = options.tmpDir ?? layout.tmpDir;
  await mkdir(layout.metadataDir, { recursive: true }).catch((err: unknown) => {
    throw fsError(err, layout.metadataDir);
  });
  const writer: MetadataWriter = {
    write: (name, data) => writeFileAtomic(`${layout.metadataDir}/${name}`, data, { tmpDir }),
    remove: (name) =>
      unlink(`${layout.metadataDir}/${name}`).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw fsError(err, `removing stale ${layout.metadataDir}/${name}`);
      }),
  };
  return commitMetadataWith(writer, manifest, sign, options.bytes);
}

/** Writes and removes files of a mirror's `.update-mirror/` folder, wherever it lives. */
export interface MetadataWriter {
  /** Replaces the file atomically. */
  write(name: string, data: Uint8Array): Promise<void>;
  /** Removes the file; a missing one is fine. */
  remove(name: string): Promise<void>;
}

/** commitMirrorMetadata's order (SHA256SUMS, signature or none, manifest last) through any writer. */
export async function commitMetadataWith(writer: MetadataWriter, manifest: Manifest, sign?: ManifestSigner, manifestBytes?: Buffer): Promise<Buffer> {
  const bytes = manifestBytes ?? serializeManifest(manifest);
  await writer.write(SUMS_NAME, sha256SumsBytes(manifest.files));
  if (sign) await writer.write(SIGNATURE_NAME, Buffer.from(sign(bytes), "utf8"));
  else await writer.remove(SIGNATURE_NAME);
  await writer.write(MANIFEST_NAME, bytes);
  return bytes;
}

/** A signer for manifests made with `key`: minisign ED with minisign's default trusted comment. */
export function manifestSigner(key: SecretKey, now = new Date()): ManifestSigner {
  return (bytes) => signDetached(bytes, key, defaultTrustedComment(MANIFEST_NAME, now));
}

/** Writes a public file beside the manifest (`.update-mirror/<name>`, e.g. a medium's README.txt), atomically. */
export async function writeMetadataFile(root: string, name: string, data: Uint8Array): Promise<void> {
  const layout = mirrorLayout(root);
  await writeFileAtomic(`${layout.metadataDir}/${name}`, data, { tmpDir: layout.tmpDir });
}
