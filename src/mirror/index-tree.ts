// `index`: hash every file of a folder and commit a manifest, SHA256SUMS and optional signature for it.
import { ManifestError } from "../core/errors.js";
import { formatTimestamp, MANIFEST_FORMAT, type Manifest, type ManifestFile, sortFiles } from "../core/manifest.js";
import type { SecretKey } from "../crypto/keys.js";
import { walkPayload } from "../fs/safe-tree.js";
import { createHashPool, type HashPool } from "../hash/hash-pool.js";
import { GENERATOR } from "../version.js";
import { commitMirrorMetadata, manifestSigner, readMirrorManifest } from "./metadata.js";
import { createTagger, type TagRule } from "./tags.js";

export interface IndexOptions {
  tagRules?: readonly TagRule[];
  signingKey?: SecretKey;
  expires?: Date;
  /** Worker threads for hashing; defaults to the machine's cores. */
  workers?: number;
  now?: Date;
}

export interface IndexResult {
  manifest: Manifest;
  manifestBytes: Buffer;
  previousVersion?: number;
  signed: boolean;
}

/**
 * Indexes the folder `root` (everything but its .update-mirror/ folder) and commits the result.
 * The new version is the previous manifest's plus one (1 for a new mirror).
 * Throws InputRefusedError listing every symlink, device or unsafe name (nothing is written then),
 * ManifestError when an existing manifest is unreadable, NotFoundError/IoError for file-system trouble,
 * IntegrityError when a file changes while it is hashed.
 */
export async function indexTree(root: string, options: IndexOptions = {}): Promise<IndexResult> {
  const now = options.now ?? new Date();
  let previous: Awaited<ReturnType<typeof readMirrorManifest>>;
  try {
    previous = await readMirrorManifest(root);
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    throw new ManifestError(`${err.message}\n  (the existing manifest sets the next version; fix or remove it to index afresh)`, { cause: err });
  }

  // Hashing starts as the walk finds files, so the walk's time hides behind the workers'.
  const tagger = createTagger(options.tagRules ?? []);
  const pool: HashPool = createHashPool(options.workers === undefined ? {} : { workers: options.workers });
  const hashed: Promise<ManifestFile>[] = [];
  let files: ManifestFile[];
  try {
    await walkPayload(root, `cannot index ${root}`, (entry) => {
      const job = pool.hashFile(entry.absPath, entry.size).then((digest) => {
        const file: ManifestFile = { path: entry.path, size: digest.size, sha256: digest.sha256 };
        const tags = tagger(entry.path);
        if (tags) file.tags = tags;
        return file;
      });
      // Observed at once, so a refusal after the walk never leaves a rejection unhandled.
      job.catch(() => undefined);
      hashed.push(job);
    });
    files = await Promise.all(hashed);
  } finally {
    await pool.close();
  }

  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: (previous?.manifest.version ?? 0) + 1,
    created: formatTimestamp(now),
    origin: { generator: GENERATOR },
    files: sortFiles(files),
  };
  if (options.expires) manifest.expires = formatTimestamp(options.expires);
  const manifestBytes = await commitMirrorMetadata(root, manifest, options.signingKey && manifestSigner(options.signingKey, now));
  const result: IndexResult = { manifest, manifestBytes, signed: options.signingKey !== undefined };
  if (previous) result.previousVersion = previous.manifest.version;
  return result;
}
