// Archive export: the mirror's signed manifest first, then its files (all, or only those changed since a base), verified as they are read.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type ArchiveInput, writeArchive } from "../archive/writer.js";
import { maxFileSizeFor } from "../fs/file-systems.js";
import { InputRefusedError, IntegrityError, fsError, NotFoundError, UsageError } from "../core/errors.js";
import { type Manifest, type ManifestFile, parseManifest, totalBytes } from "../core/manifest.js";
import type { RunSummary } from "../engine/events.js";
import { DELTA_FORMAT, DELTA_NAME, deltaBetween, serializeDelta } from "../mirror/delta.js";
import { MANIFEST_NAME, METADATA_DIR, mirrorLayout, SIGNATURE_NAME, SUMS_NAME } from "../mirror/layout.js";
import { createFolderStore } from "../stores/folder.js";
import type { Runtime } from "../cli/runtime.js";
import { readSourceMirror } from "./export-folder.js";
import { renderMediumReadme } from "./medium-readme.js";

export interface ArchiveExport {
  mirror: string;
  to: string;
  format: "zip" | "tar";
  splitSize?: number;
  /** A version number of the mirror's retained generations, or a manifest file (e.g. the inside mirror's). */
  since?: string;
  dryRun: boolean;
  json: boolean;
  verbose: boolean;
}

// Files up to this size are read whole (one call beats a stream's setup); larger ones stream.
const WHOLE_READ = 1024 * 1024;
// Small files read ahead of the one being written.
const READ_AHEAD = 8;
// Headers, central directory and padding per entry, for the size estimate.
const ENTRY_OVERHEAD = 1024;

/** The base manifest a delta is cut against. Throws UsageError when it cannot be found or is newer. */
async function resolveBase(mirror: string, since: string, current: Manifest): Promise<Manifest> {
  let base: Manifest;
  if (/^\d+$/.test(since)) {
    const version = Number(since);
    if (version === current.version) base = current;
    else {
      const store = createFolderStore(mirror);
      try {
        base = await store.readGeneration(version);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        const kept = await store.generations();
        throw new UsageError(
          `--since ${since}: ${mirror} no longer keeps version ${version} (it keeps ${[current.version, ...kept].join(", ")}); give --since the manifest.json of the mirror you are updating instead`,
        );
      }
    }
  } else {
    const bytes = await readFile(since).catch((err: unknown) => {
      throw fsError(err, `--since ${since}`);
    });
    base = parseManifest(bytes, since);
  }
  if (base.version > current.version) throw new UsageError(`--since: version ${base.version} is newer than ${mirror}'s version ${current.version}`);
  return base;
}

/** Streams a mirror file, failing at the end when its bytes are not the ones the manifest lists. */
async function* verifiedStream(file: string, entry: ManifestFile): AsyncGenerator<Uint8Array> {
  const hash = createHash("sha256");
  let size = 0;
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: WHOLE_READ })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  } catch (err) {
    throw fsError(err, file);
  }
  checkContent(entry, size, hash.digest("hex"));
}

function checkContent(entry: ManifestFile, size: number, sha256: string): void {
  if (size !== entry.size || sha256 !== entry.sha256) {
    throw new IntegrityError(`${entry.path}: the mirror's file does not match its manifest (${size} bytes, SHA-256 ${sha256}); run verify, or export again if a sync was publishing`);
  }
}

export async function exportToArchive(job: ArchiveExport, rt: Runtime): Promise<RunSummary> {
  const { createReporter } = await import("../cli/reporters/reporter.js");
  const emit = createReporter({ json: job.json, verbose: job.verbose, logger: rt.logger });
  const started = performance.now();
  const source = await readSourceMirror(job.mirror);
  const { manifest } = source;
  const base = job.since === undefined ? undefined : await resolveBase(job.mirror, job.since, manifest);
  const { carry, removed } = base ? deltaBetween(base, manifest) : { carry: manifest.files, removed: [] };
  const payloadBytes = totalBytes({ files: carry });

  // A file system with a file-size limit (FAT32) takes volumes up to that size, and nothing larger.
  const limit = await maxFileSizeFor(job.to);
  let splitSize = job.splitSize;
  if (limit !== undefined) {
    const estimate = payloadBytes + (carry.length + 8) * ENTRY_OVERHEAD + source.bytes.length;
    if (splitSize === undefined && estimate > limit) {
      throw new InputRefusedError(`${job.to}: the archive would be about ${estimate} bytes, more than the file system there takes in one file (${limit})`, [
        "add --split-size 4G (or smaller) to write volumes that fit",
      ]);
    }
    if (splitSize !== undefined && splitSize > limit) splitSize = limit;
  }

  emit({ type: "run:start", dest: job.to, sources: [job.mirror], dryRun: job.dryRun });
  emit({
    type: "plan:ready",
    add: carry.length,
    update: 0,
    remove: removed.length,
    keep: manifest.files.length - carry.length,
    downloadBytes: payloadBytes,
    files: [...carry.map((f) => ({ action: "add" as const, path: f.path, size: f.size })), ...removed.map((path) => ({ action: "remove" as const, path, size: 0 }))],
  });
  const summary: RunSummary = {
    result: job.dryRun ? "dry-run" : "updated",
    version: manifest.version,
    previousVersion: base?.version ?? null,
    previousUpstreamVersion: null,
    source: job.mirror,
    upstreamVersion: null,
    added: carry.length,
    updated: 0,
    removed: removed.length,
    failed: 0,
    bytes: 0,
    elapsedMs: 0,
  };
  if (!job.dryRun) {
    const layout = mirrorLayout(job.mirror);
    const readme = await renderMediumReadme({
      kind: base ? "delta archive" : "archive",
      manifest,
      signed: source.signature !== undefined,
      medium: job.to,
      ...(base && { delta: { baseVersion: base.version, files: carry.length, bytes: payloadBytes } }),
    });
    const mtime = new Date(Date.parse(manifest.created));
    const meta = (name: string, data: Buffer): ArchiveInput => ({ name: `${METADATA_DIR}/${name}`, size: data.length, mtime, data });
    async function* entries(): AsyncGenerator<ArchiveInput> {
      // The manifest and its signature first, so a reader going front to back meets them before any file.
      yield meta(MANIFEST_NAME, source.bytes);
      if (source.signature !== undefined) yield meta(SIGNATURE_NAME, Buffer.from(source.signature, "utf8"));
      if (base) yield meta(DELTA_NAME, serializeDelta({ format: DELTA_FORMAT, baseVersion: base.version, version: manifest.version, files: carry.map((f) => f.path), removed }));
      else yield meta(SUMS_NAME, await readFile(layout.sums).catch((err: unknown) => Promise.reject(fsError(err, layout.sums))));
      yield meta("README.txt", readme);
      // Small files are read a few ahead, so the disk is busy while archiver packs the previous ones.
      const pending = new Map<number, Promise<Buffer>>();
      const readAhead = (from: number) => {
        for (let k = from; k < Math.min(carry.length, from + READ_AHEAD); k++) {
          const f = carry[k] as ManifestFile;
          if (pending.has(k) || f.size > WHOLE_READ) continue;
          const file = join(job.mirror, ...f.path.split("/"));
          const read = readFile(file).catch((err: unknown) => Promise.reject(fsError(err, file)));
          // Handled when awaited in turn; this keeps an early failure from counting as unhandled.
          read.catch(() => undefined);
          pending.set(k, read);
        }
      };
      for (const [i, f] of carry.entries()) {
        readAhead(i);
        const file = join(job.mirror, ...f.path.split("/"));
        emit({ type: "file:start", path: f.path, size: f.size, source: job.mirror, offset: 0 });
        const ready = pending.get(i);
        pending.delete(i);
        if (ready) {
          const data = await ready;
          checkContent(f, data.length, createHash("sha256").update(data).digest("hex"));
          yield { name: f.path, size: f.size, mtime, data };
        } else {
          yield { name: f.path, size: f.size, mtime, stream: () => verifiedStream(file, f) };
        }
        // Handed to the archive: what the progress bar counts.
        emit({ type: "file:progress", path: f.path, bytes: f.size });
        emit({ type: "file:done", path: f.path, size: f.size, source: job.mirror, reused: false });
      }
    }
    emit({ type: "publish:start", version: manifest.version });
    const written = await writeArchive({ format: job.format, path: job.to, entries: entries(), ...(splitSize !== undefined && { splitSize }) });
    summary.bytes = written.bytes;
    if (written.volumes.length > 1) rt.logger.info({ volumes: written.volumes }, "volumes written");
  }
  summary.elapsedMs = Math.round(performance.now() - started);
  emit({ type: "run:done", summary });
  return summary;
}
