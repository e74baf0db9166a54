// `verify`: re-hash a mirror against its manifest and say exactly what is missing, corrupt, unlisted or unsigned.
import { lstat, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fsError, ManifestError, NotFoundError, UpdateMirrorError } from "../core/errors.js";
import type { Manifest } from "../core/manifest.js";
import { comparePaths, METADATA_DIR } from "../core/safe-path.js";
import { parseSha256Sums } from "../core/sha256sums.js";
import { verifyDetached, type PublicKey } from "../crypto/minisign.js";
import { walkTree } from "../fs/walk.js";
import { createHashPool } from "../hash/hash-pool.js";
import { mirrorLayout } from "./layout.js";
import { readMirrorManifest, readMirrorSignature } from "./metadata.js";

export type SignatureStatus = "valid" | "invalid" | "missing" | "not-checked";

export interface VerifyReport {
  root: string;
  version: number;
  created: string;
  expires?: string;
  expired: boolean;
  signature: { status: SignatureStatus; detail?: string };
  checkedFiles: number;
  checkedBytes: number;
  missing: string[];
  corrupt: { path: string; reason: string }[];
  /** Files under the root that the manifest does not list (the metadata folder excepted). */
  unlisted: string[];
  /** Entries that can never be part of a mirror (symlinks, devices), found under the root. */
  unsupported: string[];
  /** Disagreements between SHA256SUMS and the manifest. */
  sums: string[];
  ok: boolean;
}

export interface VerifyOptions {
  /** When given, the manifest's signature must verify against it. */
  publicKey?: PublicKey;
  workers?: number;
  now?: Date;
}

function compareSums(manifest: Manifest, text: string | undefined): string[] {
  if (text === undefined) return ["SHA256SUMS is missing"];
  const { sums, badLines } = parseSha256Sums(text);
  const problems = badLines.map((n) => `SHA256SUMS line ${n} is malformed or repeats a path`);
  for (const file of manifest.files) {
    const sum = sums.get(file.path);
    if (sum === undefined) problems.push(`SHA256SUMS does not list ${file.path}`);
    else if (sum !== file.sha256) problems.push(`SHA256SUMS disagrees with the manifest on ${file.path}`);
    sums.delete(file.path);
  }
  for (const path of sums.keys()) problems.push(`SHA256SUMS lists ${path}, which the manifest does not`);
  return problems;
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    const mapped = fsError(err, file);
    if (mapped instanceof NotFoundError) return undefined;
    throw mapped;
  }
}

/**
 * Checks the mirror at `root`: signature (when a key is given), every listed file's size and SHA-256,
 * files present but unlisted, and SHA256SUMS against the manifest. Problems go in the report; it
 * throws only when there is nothing to check: NotFoundError (no such folder), ManifestError (no or
 * invalid manifest), IoError.
 */
export async function verifyTree(root: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const now = options.now ?? new Date();
  const walked = await walkTree(root, { skip: (rel, isDir) => isDir && rel === METADATA_DIR });
  const loaded = await readMirrorManifest(root);
  if (!loaded) throw new ManifestError(`${mirrorLayout(root).manifest}: no manifest, so ${root} is not an update-mirror mirror (run index first)`);
  const { manifest, bytes } = loaded;

  const signature: VerifyReport["signature"] = { status: "not-checked" };
  if (options.publicKey) {
    const sigText = await readMirrorSignature(root);
    if (sigText === undefined) {
      signature.status = "missing";
      signature.detail = `${mirrorLayout(root).signature} is missing`;
    } else {
      try {
        verifyDetached(bytes, sigText, options.publicKey, mirrorLayout(root).signature);
        signature.status = "valid";
      } catch (err) {
        if (!(err instanceof UpdateMirrorError)) throw err;
        signature.status = "invalid";
        signature.detail = err.message;
      }
    }
  }

  const onDisk = new Map(walked.files.map((f) => [f.path, f]));
  const missing: string[] = [];
  const corrupt: VerifyReport["corrupt"] = [];
  let checkedBytes = 0;
  const pool = createHashPool(options.workers === undefined ? {} : { workers: options.workers });
  try {
    await Promise.all(
      manifest.files.map(async (file) => {
        const entry = onDisk.get(file.path);
        onDisk.delete(file.path);
        if (!entry) {
          const stat = await lstat(join(root, file.path)).catch(() => undefined);
          if (stat) corrupt.push({ path: file.path, reason: "not a regular file" });
          else missing.push(file.path);
          return;
        }
        if (entry.size !== file.size) {
          corrupt.push({ path: file.path, reason: `size is ${entry.size} bytes, manifest says ${file.size}` });
          return;
        }
        try {
          const digest = await pool.hashFile(entry.absPath, file.size);
          checkedBytes += digest.size;
          if (digest.sha256 !== file.sha256) corrupt.push({ path: file.path, reason: `SHA-256 is ${digest.sha256}, manifest says ${file.sha256}` });
        } catch (err) {
          if (!(err instanceof UpdateMirrorError)) throw err;
          corrupt.push({ path: file.path, reason: err.message });
        }
      }),
    );
  } finally {
    await pool.close();
  }

  const sums = compareSums(manifest, await readOptional(mirrorLayout(root).sums));
  const expired = manifest.expires !== undefined && Date.parse(manifest.expires) <= now.getTime();
  const report: VerifyReport = {
    root,
    version: manifest.version,
    created: manifest.created,
    expired,
    signature,
    checkedFiles: manifest.files.length,
    checkedBytes,
    missing: missing.sort(comparePaths),
    corrupt: corrupt.sort((a, b) => comparePaths(a.path, b.path)),
    unlisted: [...onDisk.keys()].sort(comparePaths),
    unsupported: walked.refused,
    sums,
    ok: false,
  };
  if (manifest.expires !== undefined) report.expires = manifest.expires;
  report.ok =
    report.missing.length === 0 &&
    report.corrupt.length === 0 &&
    report.unlisted.length === 0 &&
    report.unsupported.length === 0 &&
    report.sums.length === 0 &&
    (signature.status === "valid" || signature.status === "not-checked");
  return report;
}
