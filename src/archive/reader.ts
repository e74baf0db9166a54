// Opening an archive (zip, tar, or a split set of either) for reading: checked whole before anything is returned.
import { InputRefusedError, NotFoundError } from "../core/errors.js";
import { caseFoldKey, pathSetConflicts } from "../core/safe-path.js";
import { type ArchiveFormat, detectFormat } from "./format.js";
import { archiveFolderNameReason, archiveNameReason, stripDotSlash } from "./names.js";
import { indexTar, type TarFile } from "./tar-index.js";
import { VolumeSet } from "./volume-set.js";
import { describeVolumes, resolveVolumes } from "./volumes.js";
import { indexZip, type ZipFile, zipFileBytes } from "./zip-reader.js";

/** A regular file in an archive. */
export interface ArchiveEntry {
  /** Size in bytes (uncompressed). */
  size: number;
}

/** An archive opened for reading; every listed entry passed the checks of openArchive. */
export interface ArchiveReader {
  readonly format: ArchiveFormat;
  /** The files read, in order: one, or the split volumes `x.001`, `x.002`, ... */
  readonly volumes: string[];
  /** Regular files by name (no leading "./"); folder entries are accepted but not listed. */
  readonly entries: ReadonlyMap<string, ArchiveEntry>;
  /**
   * The bytes of entry `name` from `offset` (default 0) to its end. Throws NotFoundError at once for
   * a name not in `entries`, RangeError for an offset outside [0, size]. While iterating: IntegrityError
   * when the bytes do not match the archive (zip CRC-32 over a whole entry, length, damaged deflate
   * data, a volume that shrank), IoError naming the volume for read failures.
   */
  open(name: string, offset?: number): AsyncIterable<Uint8Array>;
  /** Releases the volumes; entries being read fail afterwards. Never throws. */
  close(): Promise<void>;
}

type Located = { format: "zip"; file: ZipFile } | { format: "tar"; file: TarFile };

/**
 * Opens `path`: `x.zip`, `x.tar`, a split set named by its first volume `x.tar.001`, or `x.tar` when
 * only `x.tar.001`, `x.tar.002`, ... exist. The format comes from the content, not the name.
 * The whole archive is checked before this returns, and refused as a whole with InputRefusedError
 * (naming the archive and every entry at fault) for: symlinks, hard links, devices, FIFOs, sockets,
 * names breaking the safe-path rules, duplicate or case-only duplicate names, a file that is also a
 * folder, zip entries that are encrypted or use a method other than stored/deflate, damaged or
 * truncated headers, sizes running past the end of the data, missing split volumes, content that is
 * neither zip nor tar. Throws NotFoundError when nothing is at `path`, IoError for unreadable files.
 */
export async function openArchive(path: string): Promise<ArchiveReader> {
  const volumes = await resolveVolumes(path);
  const set = await VolumeSet.open(volumes);
  try {
    const label = describeVolumes(volumes);
    const format = await detectFormat(set);
    if (format === undefined) throw new InputRefusedError(`refusing archive ${label}`, ["it is neither a zip nor a tar archive (judged by its content)"]);
    const index = format === "zip" ? await indexZip(set) : await indexTar(set);
    if (index.damage !== undefined) {
      throw new InputRefusedError(`refusing archive ${label}: it is damaged or truncated`, [index.damage, ...index.refused]);
    }
    const located = new Map<string, Located>();
    const problems = [...index.refused];
    const files: string[] = [];
    for (const { name: stored, file } of index.files) {
      const name = stripDotSlash(stored);
      const reason = archiveNameReason(name);
      if (reason !== undefined) {
        problems.push(`${JSON.stringify(stored)}: unsafe path: ${reason}`);
        continue;
      }
      files.push(name);
      located.set(name, format === "zip" ? { format, file: file as ZipFile } : { format, file: file as TarFile });
    }
    problems.push(...pathSetConflicts(files));
    const foldedFiles = new Set(files.map(caseFoldKey));
    for (const stored of index.folders) {
      const name = stripDotSlash(stored);
      if (name === "" || name === ".") continue;
      const reason = archiveFolderNameReason(name);
      if (reason !== undefined) problems.push(`${JSON.stringify(`${stored}/`)}: unsafe path: ${reason}`);
      else if (foldedFiles.has(caseFoldKey(name))) problems.push(`${JSON.stringify(name)}: is both a file and a folder`);
    }
    if (problems.length > 0) throw new InputRefusedError(`refusing archive ${label}`, problems);
    return createReader(format, set, located, label);
  } catch (err) {
    await set.close();
    throw err;
  }
}

function createReader(format: ArchiveFormat, set: VolumeSet, located: Map<string, Located>, label: string): ArchiveReader {
  const entries = new Map<string, ArchiveEntry>();
  for (const [name, { file }] of located) entries.set(name, { size: file.size });
  return {
    format,
    volumes: [...set.volumes],
    entries,
    open(name: string, offset = 0): AsyncIterable<Uint8Array> {
      const entry = located.get(name);
      if (entry === undefined) throw new NotFoundError(`${JSON.stringify(name)}: not in archive ${label}`);
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > entry.file.size) {
        throw new RangeError(`offset ${offset} is outside ${JSON.stringify(name)} (${entry.file.size} bytes)`);
      }
      const what = `${JSON.stringify(name)} in archive ${label}`;
      if (entry.format === "zip") return zipFileBytes(set, entry.file, offset, what);
      return set.stream(entry.file.dataStart + offset, entry.file.dataStart + entry.file.size);
    },
    close: () => set.close(),
  };
}
