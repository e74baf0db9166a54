// Zip archives read through yauzl over a volume set: the central directory checked entry by entry, data streamed with CRC-32.
import { Readable, pipeline } from "node:stream";
import { crc32, createInflateRaw } from "node:zlib";
import yauzl from "yauzl";
import { IntegrityError, UpdateMirrorError } from "../core/errors.js";
import type { VolumeSet } from "./volume-set.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const FILE_KINDS = new Map<number, string>([
  [0o120000, "is a symbolic link"],
  [0o020000, "is a character device"],
  [0o060000, "is a block device"],
  [0o010000, "is a FIFO (named pipe)"],
  [0o140000, "is a socket"],
]);

/** A regular file in a zip archive, with what reading it needs. */
export interface ZipFile {
  size: number;
  compressedSize: number;
  method: number;
  crc32: number;
  /** Byte of the volume set where the (possibly compressed) data starts. */
  dataStart: number;
}

/** What a zip archive holds, before any policy: files, folders, and every problem met on the way. */
export interface ZipIndex {
  files: { name: string; file: ZipFile }[];
  folders: string[];
  refused: string[];
  damage: string | undefined;
}

// yauzl reads through this: every read is a positioned read of the volume set.
class VolumeSetReader extends yauzl.RandomAccessReader {
  private readonly set: VolumeSet;

  constructor(set: VolumeSet) {
    super();
    this.set = set;
  }

  override _readStreamForRange(start: number, end: number): Readable {
    return Readable.from(this.set.stream(start, end));
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    // yauzl's callback also takes the count read (its own implementation passes it), which the typings omit.
    const done = callback as (err: Error | null, bytesRead?: number) => void;
    this.set.readAt(position, length).then(
      (data) => {
        data.copy(buffer, offset);
        done(null, data.length);
      },
      (err: Error) => done(err),
    );
  }

  // The volume set belongs to the archive reader, which closes it.
  override close(callback: (err: Error | null) => void): void {
    setImmediate(() => callback(null));
  }
}

/**
 * Reads the central directory of the zip archive in `set` and every entry's local header, refusing
 * (in `refused`) links, devices, encrypted entries, methods other than stored and deflate, names whose
 * two copies disagree, data running past the central directory and entries overlapping each other.
 * Damage yauzl reports (bad signatures, truncation, multi-disk) goes to `damage`. Never throws for bad
 * content; throws IoError/IntegrityError from the volume reads.
 */
export async function indexZip(set: VolumeSet): Promise<ZipIndex> {
  const index: ZipIndex = { files: [], folders: [], refused: [], damage: undefined };
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromRandomAccessReaderPromise(new VolumeSetReader(set), set.size, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
      // Checked below, after encryption (whose 12-byte header yauzl's own check would call damage).
      validateEntrySizes: false,
      strictFileNames: true,
    });
  } catch (err) {
    if (err instanceof UpdateMirrorError) throw err;
    index.damage = `it is not a readable zip archive: ${(err as Error).message}`;
    return index;
  }
  // yauzl starts reading entries at the central directory, so its cursor tells where entry data must end.
  const centralDirectory = zip.readEntryCursor as unknown as number;
  const spans: { name: string; start: number; end: number }[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      const name = entryName(entry);
      if (typeof name !== "string") {
        index.refused.push(`entry ${JSON.stringify(entry.fileNameRaw.toString("latin1"))}: ${name.problem}`);
        continue;
      }
      const quoted = JSON.stringify(name);
      const checked = await checkEntry(zip, entry, name, centralDirectory);
      if (typeof checked === "string") {
        index.refused.push(`${quoted}: ${checked}`);
        continue;
      }
      spans.push({ name, start: entry.relativeOffsetOfLocalHeader, end: checked.dataStart + entry.compressedSize });
      const kind = (entry.externalFileAttributes >>> 16) & S_IFMT;
      if (name.endsWith("/") || kind === S_IFDIR) {
        index.folders.push(name.endsWith("/") ? name.slice(0, -1) : name);
        continue;
      }
      index.files.push({
        name,
        file: {
          size: entry.uncompressedSize,
          compressedSize: entry.compressedSize,
          method: entry.compressionMethod,
          crc32: entry.crc32,
          dataStart: checked.dataStart,
        },
      });
    }
  } catch (err) {
    if (err instanceof UpdateMirrorError) throw err;
    index.damage = `its central directory is damaged: ${(err as Error).message}`;
    return index;
  } finally {
    zip.close();
  }
  spans.sort((a, b) => a.start - b.start);
  for (let i = 1; i < spans.length; i += 1) {
    const before = spans[i - 1];
    const after = spans[i];
    if (before && after && before.end > after.start) {
      index.refused.push(`${JSON.stringify(after.name)}: overlaps the data of ${JSON.stringify(before.name)}`);
    }
  }
  return index;
}

/** The entry's problem, or where its data starts when it has none. */
async function checkEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, name: string, centralDirectory: number): Promise<string | { dataStart: number }> {
  const mode = entry.externalFileAttributes >>> 16;
  const kind = mode & S_IFMT;
  // Any host may set Unix type bits; honour them whatever "version made by" says, so nothing slips through.
  const kindProblem = FILE_KINDS.get(kind);
  if (kindProblem !== undefined) return kindProblem;
  if (kind !== 0 && kind !== S_IFREG && kind !== S_IFDIR) return `has the unknown file type 0o${kind.toString(8)}`;
  if (kind === S_IFREG && name.endsWith("/")) return "is a regular file whose name ends with '/'";
  if (entry.generalPurposeBitFlag & 0x1) return "is encrypted";
  if (entry.compressionMethod !== METHOD_STORED && entry.compressionMethod !== METHOD_DEFLATE) {
    return `uses compression method ${entry.compressionMethod} (only stored (0) and deflate (8) are supported)`;
  }
  if ((name.endsWith("/") || kind === S_IFDIR) && entry.uncompressedSize > 0) return "is a folder entry that carries data";
  if (entry.compressionMethod === METHOD_STORED && entry.compressedSize !== entry.uncompressedSize) {
    return `is stored (not compressed) but records ${entry.compressedSize} bytes stored for ${entry.uncompressedSize} bytes of data`;
  }
  // 30 bytes is the smallest local header; checked before reading it so the message says what is wrong.
  if (entry.relativeOffsetOfLocalHeader + 30 + entry.compressedSize > centralDirectory) return pastEnd(entry.compressedSize, centralDirectory);
  let local: yauzl.LocalFileHeader;
  try {
    local = await zip.readLocalFileHeaderPromise(entry);
  } catch (err) {
    if (err instanceof UpdateMirrorError) throw err;
    return `its local header is damaged: ${(err as Error).message}`;
  }
  // Tools that read local headers and tools that read the central directory must see the same entry.
  if (!local.fileName.equals(entry.fileNameRaw)) return `its local header names ${JSON.stringify(local.fileName.toString("utf8"))} instead (the two copies of the name disagree)`;
  if (local.compressionMethod !== entry.compressionMethod) return "its local header and the central directory disagree on the compression method";
  if (local.generalPurposeBitFlag & 0x1) return "is encrypted";
  const end = local.fileDataStart + entry.compressedSize;
  if (end > centralDirectory) return pastEnd(entry.compressedSize, centralDirectory);
  return { dataStart: local.fileDataStart };
}

function pastEnd(size: number, centralDirectory: number): string {
  return `declares ${size} bytes, which run past the end of the entry data at byte ${centralDirectory} (truncated or damaged)`;
}

/**
 * The entry's name as UTF-8: from the Info-ZIP Unicode Path field when present (and consistent), else
 * the stored bytes, flagged UTF-8 or not (plain ASCII is UTF-8). Legacy code-page names are refused
 * rather than guessed: a name decoded as CP437 turns control bytes into harmless-looking glyphs.
 */
function entryName(entry: yauzl.Entry): string | { problem: string } {
  const raw = decodeUtf8(entry.fileNameRaw);
  for (const field of entry.extraFields) {
    if (field.id !== 0x7075 || field.data.length < 6 || field.data[0] !== 1) continue;
    if (field.data.readUInt32LE(1) >>> 0 !== crc32(entry.fileNameRaw) >>> 0) continue;
    const unicode = decodeUtf8(field.data.subarray(5));
    if (unicode === undefined) return { problem: "its Unicode Path field is not valid UTF-8" };
    if (raw !== undefined && raw !== unicode) return { problem: `its Unicode Path field names ${JSON.stringify(unicode)} instead (the two names disagree)` };
    return unicode;
  }
  return raw ?? { problem: "its name is not valid UTF-8 (names in a legacy code page are not supported)" };
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * The bytes of a zip file entry from `offset`. A stored entry is read from `offset` directly; a
 * deflated one is inflated from its start and the first `offset` bytes skipped. When the whole entry
 * passes (offset 0, or any deflated read), its CRC-32 is checked at the end. Throws IntegrityError
 * naming `what` for a wrong CRC, a wrong length or damaged deflate data; IoError from the reads.
 */
export async function* zipFileBytes(set: VolumeSet, file: ZipFile, offset: number, what: string): AsyncGenerator<Uint8Array> {
  if (file.method === METHOD_STORED) {
    let crc = 0;
    for await (const chunk of set.stream(file.dataStart + offset, file.dataStart + file.size)) {
      if (offset === 0) crc = crc32(chunk, crc);
      yield chunk;
    }
    if (offset === 0 && crc >>> 0 !== file.crc32 >>> 0) throw crcError(what, crc, file.crc32);
    return;
  }
  const inflated = pipeline(Readable.from(set.stream(file.dataStart, file.dataStart + file.compressedSize)), createInflateRaw(), () => undefined);
  let crc = 0;
  let seen = 0;
  try {
    for await (const value of inflated) {
      const chunk = value as Buffer;
      crc = crc32(chunk, crc);
      const from = seen;
      seen += chunk.length;
      if (seen > file.size) throw new IntegrityError(`${what}: inflates to more than its declared ${file.size} bytes`);
      if (seen > offset) yield from >= offset ? chunk : chunk.subarray(offset - from);
    }
  } catch (err) {
    if (err instanceof UpdateMirrorError) throw err;
    throw new IntegrityError(`${what}: its deflate data is damaged (${(err as Error).message})`, { cause: err });
  } finally {
    inflated.destroy();
  }
  if (seen !== file.size) throw new IntegrityError(`${what}: inflates to ${seen} bytes, not its declared ${file.size}`);
  if (crc >>> 0 !== file.crc32 >>> 0) throw crcError(what, crc, file.crc32);
}

function crcError(what: string, actual: number, expected: number): IntegrityError {
  const hex = (n: number) => (n >>> 0).toString(16).padStart(8, "0");
  return new IntegrityError(`${what}: CRC-32 ${hex(actual)} does not match ${hex(expected)} recorded in the archive`);
}
