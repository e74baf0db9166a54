// Folder source: a local path or file:// URL (a mounted share, a medium, another mirror on disk).
import { constants, createReadStream } from "node:fs";
import { open as openFile, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { fsError, NotFoundError, SourceError, UpdateMirrorError } from "../core/errors.js";
import type { ManifestProbe, OpenedFile, OpenOptions, Source, SourceEntry } from "../core/source.js";
import { walkPayload } from "../fs/safe-tree.js";
import { METADATA_DIR, mirrorLayout } from "../mirror/layout.js";
import { readMirrorManifest, readMirrorSignature } from "../mirror/metadata.js";
import { retainedLayout } from "../mirror/retained.js";

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
  const layout = mirrorLayout(root);
  // A mirror whose publish was cut short (a medium yanked mid-export) has some files already replaced
  // by the next version; the previous version's content is kept by hash among its objects.
  let publishPending = false;
  return {
    label,
    capabilities: { rangeReads: true, mtimePrecisionMs: 1 },

    async probeManifest(validator, options = {}): Promise<ManifestProbe> {
      publishPending = await stat(layout.journal).then(
        () => true,
        () => false,
      );
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
      const offset = options.offset ?? 0;
      const retained = publishPending && options.sha256 !== undefined ? await openFile(retainedLayout(root).object(options.sha256), "r").catch(() => undefined) : undefined;
      // Open first so "not found" is an error of open(), not of the stream.
      const handle =
        retained ??
        // Never through a link, and never blocking on a FIFO: a listing refuses both, and a path a
        // medium's manifest names must be a regular file.
        (await openFile(join(root, path), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: unknown) => {
          throw sourceError(err, label, path);
        }));
      const info = await handle.stat();
      if (!info.isFile()) {
        await handle.close();
        throw new SourceError(`${label}: ${path}: not a regular file`, { retryable: false });
      }
      const size = info.size;
      const stream = createReadStream("", { fd: handle, start: offset, highWaterMark: READ_CHUNK, ...(options.signal && { signal: options.signal }) });
      return { body: stream, offset, size };
    },

    async readMetadata(name: string): Promise<Buffer | undefined> {
      return readFile(join(layout.metadataDir, name)).catch((err: unknown) => {
        const mapped = sourceError(err, label, `${METADATA_DIR}/${name}`);
        if (mapped instanceof NotFoundError) return undefined;
        throw mapped;
      });
    },

    async close(): Promise<void> {},
  };
}
