// Archive source: an exported .zip/.tar (or its split volumes) read in place, as the engine reads any other source.
import { createHash } from "node:crypto";
import { NotFoundError, SourceError } from "../core/errors.js";
import { MAX_MANIFEST_BYTES, parseManifest } from "../core/manifest.js";
import type { ManifestProbe, OpenedFile, OpenOptions, ProbeOptions, Source, SourceEntry } from "../core/source.js";
import { openArchive } from "../archive/reader.js";
import { MANIFEST_NAME, METADATA_DIR, SIGNATURE_NAME } from "../mirror/layout.js";
import { readCapped } from "./read-capped.js";

// Metadata files beside the manifest are small; anything bigger is not ours.
const MAX_METADATA_BYTES = 1024 * 1024;

/** Passes `body` on, failing with the signal's reason once it is aborted (before the first chunk too). */
async function* abortable(body: AsyncIterable<Uint8Array>, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  signal?.throwIfAborted();
  for await (const chunk of body) {
    signal?.throwIfAborted();
    yield chunk;
  }
}

/**
 * Opens `path` (an archive, or the first volume or base name of a split set) as a Source. The
 * archive is checked as a whole first: hostile entries (links, devices, unsafe or duplicate names)
 * refuse it before anything is read. Throws what openArchive throws.
 */
export async function openArchiveSource(path: string): Promise<Source> {
  const reader = await openArchive(path);
  const label = path;
  const entry = (name: string) => reader.entries.get(name);
  const readSmall = async (name: string, limit: number): Promise<Buffer | undefined> => (entry(name) ? readCapped(reader.open(name), limit, `${label}: ${name}`) : undefined);
  return {
    label,
    capabilities: { rangeReads: true, mtimePrecisionMs: 1000 },

    async probeManifest(validator: string | undefined, options: ProbeOptions = {}): Promise<ManifestProbe> {
      const manifestName = `${METADATA_DIR}/${MANIFEST_NAME}`;
      const bytes = await readSmall(manifestName, MAX_MANIFEST_BYTES);
      if (bytes === undefined) return { kind: "none" };
      // The archive file may be replaced by another export of the same name: its manifest says which.
      const digest = createHash("sha256").update(bytes).digest("hex");
      if (validator === digest) return { kind: "unchanged" };
      const manifest = parseManifest(bytes, `${label}: ${manifestName}`);
      const signature = options.signature ? (await readSmall(`${METADATA_DIR}/${SIGNATURE_NAME}`, MAX_METADATA_BYTES))?.toString("utf8") : undefined;
      return { kind: "manifest", upstream: { manifest, bytes, validator: digest, ...(signature !== undefined && { signature }) } };
    },

    async list(): Promise<SourceEntry[]> {
      throw new SourceError(`${label}: an archive is imported by its manifest; this one has none`);
    },

    async open(path: string, options: OpenOptions = {}): Promise<OpenedFile> {
      const found = entry(path);
      if (!found) throw new NotFoundError(`${label}: ${path}: not in the archive`);
      const offset = Math.min(options.offset ?? 0, found.size);
      return { body: abortable(reader.open(path, offset), options.signal), offset, size: found.size };
    },

    readMetadata: (name: string) => readSmall(`${METADATA_DIR}/${name}`, MAX_METADATA_BYTES),

    close: () => reader.close(),
  };
}
