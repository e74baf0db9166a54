// Folder source: a local path or file:// URL (a mounted share, a medium, another mirror on disk).
import { createReadStream } from "node:fs";
import { open as openFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { fsError, NotFoundError, SourceError, UpdateMirrorError } from "../core/errors.js";
import type { ManifestProbe, OpenedFile, OpenOptions, Source, SourceEntry } from "../core/source.js";
import { walkPayload } from "../fs/safe-tree.js";
import { mirrorLayout } from "../mirror/layout.js";
import { readMirrorManifest, readMirrorSignature } from "../mirror/metadata.js";

// Large reads: hashing and copying are faster with 1 MiB chunks than the 64 KiB default.
const READ_CHUNK = 1 << 20;

/** Wraps a local-file failure as a source failure (so the engine fails over) unless it is "not found". */
function sourceError(err: unknown, label: string, what: string): UpdateMirrorError {
  const mapped = fsError(err, `${label}: ${what}`);
  if (mapped instanceof NotFoundError || mapped instanceof SourceError) return mapped;
  if (err instanceof UpdateMirrorError) return err;
  return new SourceError(mapped.message, { cause: err });
}

export function createFolderSource(root: string): Source {
  const label = root;
  return {
    label,
    capabilities: { rangeReads: true, mtimePrecisionMs: 1 },

    async probeManifest(validator, options = {}): Promise<ManifestProbe> {
      const layout = mirrorLayout(root);
      let current: string;
      try {
        const st = await stat(layout.manifest);
        current = `${st.size}:${st.mtimeMs}:${st.ino}`;
      } catch (err) {
        const mapped = sourceError(err, label, "manifest");
        if (mapped instanceof NotFoundError) {
          await stat(root).catch((e: unknown) => {
            throw sourceError(e, label, "folder");
          });
          return { kind: "none" };
        }
        throw mapped;
      }
      if (validator === current) return { kind: "unchanged" };
      const loaded = await readMirrorManifest(root);
      if (!loaded) return { kind: "none" };
      const signature = options.signature ? await readMirrorSignature(root) : undefined;
      return { kind: "manifest", upstream: { ...loaded, validator: current, ...(signature !== undefined && { signature }) } };
    },

    async list(): Promise<SourceEntry[]> {
      const files = await walkPayload(root, `source ${label}`).catch((err: unknown) => {
        throw sourceError(err, label, "listing");
      });
      return files.map((f) => ({ path: f.path, size: f.size, mtimeMs: f.mtimeMs }));
    },

    async open(path: string, options: OpenOptions = {}): Promise<OpenedFile> {
      const file = join(root, path);
      const offset = options.offset ?? 0;
      // Open first so "not found" is an error of open(), not of the stream.
      const handle = await openFile(file, "r").catch((err: unknown) => {
        throw sourceError(err, label, path);
      });
      const size = (await handle.stat()).size;
      const stream = createReadStream("", { fd: handle, start: offset, highWaterMark: READ_CHUNK, ...(options.signal && { signal: options.signal }) });
      return { body: stream, offset, size };
    },

    async close(): Promise<void> {},
  };
}
