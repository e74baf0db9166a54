// Delta bundles: which files a medium carries when it holds only the changes since a base version.
import { ManifestError } from "../core/errors.js";
import type { Manifest, ManifestFile } from "../core/manifest.js";
import { unsafePathReason } from "../core/safe-path.js";

export const DELTA_FORMAT = "update-mirror-delta-v1";
/** Beside the manifest in a delta bundle. */
export const DELTA_NAME = "delta.json";

/**
 * What a delta bundle says about itself. Not signed, and it need not be: the signed manifest decides
 * every file's content; this only lets an import say which base it needs before changing anything.
 */
export interface DeltaInfo {
  format: typeof DELTA_FORMAT;
  /** The version the delta was cut against. */
  baseVersion: number;
  /** The manifest version it brings (the manifest in the bundle). */
  version: number;
  /** Paths of the files the bundle carries: those added or changed since the base. */
  files: string[];
  /** Paths the base had that the new version removes (informational; the manifest is authoritative). */
  removed: string[];
}

/** The files of `next` whose content the base did not have at the same path, and the paths it dropped. */
export function deltaBetween(base: Manifest, next: Manifest): { carry: ManifestFile[]; removed: string[] } {
  const had = new Map(base.files.map((f) => [f.path, f.sha256]));
  const carry = next.files.filter((f) => had.get(f.path) !== f.sha256);
  const now = new Set(next.files.map((f) => f.path));
  return { carry, removed: base.files.filter((f) => !now.has(f.path)).map((f) => f.path) };
}

export function serializeDelta(info: DeltaInfo): Buffer {
  return Buffer.from(`${JSON.stringify(info)}\n`, "utf8");
}

/** Reads delta.json strictly. Throws ManifestError naming `source` when it is malformed. */
export function parseDelta(bytes: Uint8Array, source: string): DeltaInfo {
  const fail = (msg: string): never => {
    throw new ManifestError(`${source}: ${msg}`);
  };
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    return fail(`not valid JSON (${(err as Error).message})`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return fail("not a JSON object");
  const d = doc as Record<string, unknown>;
  if (d.format !== DELTA_FORMAT) fail(`unknown format ${JSON.stringify(d.format)} (this version reads ${JSON.stringify(DELTA_FORMAT)})`);
  for (const key of ["baseVersion", "version"] as const) {
    const v = d[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) fail(`${key}: must be a positive integer`);
  }
  for (const key of ["files", "removed"] as const) {
    const list = d[key];
    if (!Array.isArray(list)) return fail(`${key}: must be an array of paths`);
    for (const p of list) {
      const reason = typeof p === "string" ? unsafePathReason(p) : "not a string";
      if (reason !== undefined) fail(`${key}: ${JSON.stringify(p)}: ${reason}`);
    }
  }
  return { format: DELTA_FORMAT, baseVersion: d.baseVersion as number, version: d.version as number, files: d.files as string[], removed: d.removed as string[] };
}
