// Index of a tar archive read from its headers alone (ustar, pax, GNU long names), since no tar library seeks.
import type { VolumeSet } from "./volume-set.js";

const BLOCK = 512;
// Limits for the header records we hold in memory: a pax record set or a GNU long name is small.
const MAX_PAX_BYTES = 1024 * 1024;
const MAX_LONG_NAME_BYTES = 64 * 1024;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A regular file in a tar archive: `size` bytes starting at byte `dataStart` of the volume set. */
export interface TarFile {
  size: number;
  dataStart: number;
}

/** What a tar archive holds, before any policy: files, folders, and every problem met on the way. */
export interface TarIndex {
  /** Regular files in archive order (names as stored, "./" removed). */
  files: { name: string; file: TarFile }[];
  /** Folder entries (names as stored, "./" and the trailing '/' removed). */
  folders: string[];
  /** Entries the archive must be refused for (links, devices, unsupported kinds), one line each naming the entry. */
  refused: string[];
  /** Set when the archive is damaged or truncated; no entry after this point was read. */
  damage: string | undefined;
}

/** True when the 512-byte block `block` is a tar header (ustar or GNU magic at 257 and a valid checksum). */
export function looksLikeTar(block: Uint8Array): boolean {
  if (block.length < BLOCK) return false;
  const magic = Buffer.from(block.subarray(257, 263)).toString("latin1");
  return (magic === "ustar\0" || magic === "ustar ") && checksumOk(block);
}

/**
 * Reads every header of the tar archive in `set` with positioned reads, skipping file data.
 * Never throws for bad content (that is reported in `damage` and `refused`); throws IoError and
 * IntegrityError from the volume reads.
 */
export async function indexTar(set: VolumeSet): Promise<TarIndex> {
  const index: TarIndex = { files: [], folders: [], refused: [], damage: undefined };
  let pax: Map<string, string> | undefined;
  let longName: string | undefined;
  let position = 0;
  for (;;) {
    if (position + BLOCK > set.size) {
      index.damage = position === set.size
        ? `it ends at byte ${position} without the end-of-archive marker (truncated?)`
        : `it ends at byte ${set.size} inside the header at byte ${position} (truncated?)`;
      return index;
    }
    const block = await set.readAt(position, BLOCK);
    if (block.every((byte) => byte === 0)) return index;
    if (!checksumOk(block)) {
      index.damage = `the header at byte ${position} is corrupt (bad checksum)`;
      return index;
    }
    const type = block[156] === 0 ? "0" : String.fromCharCode(block[156] ?? 0);
    let size = parseNumber(block.subarray(124, 136));
    const where = () => JSON.stringify(entryName(block, pax, longName) ?? `header at byte ${position}`);
    if (size === undefined) {
      index.damage = `the header at byte ${position} (${where()}) has an invalid size field`;
      return index;
    }
    const paxSize = pax?.get("size");
    if (paxSize !== undefined && !isExtensionType(type)) {
      if (!/^\d+$/.test(paxSize) || !Number.isSafeInteger(Number(paxSize))) {
        index.damage = `${where()}: has an invalid pax size ${JSON.stringify(paxSize)}`;
        return index;
      }
      size = Number(paxSize);
    }
    // Links, folders and devices carry no data in ustar, whatever their size field says.
    const dataBytes = "123456".includes(type) ? 0 : size;
    const dataStart = position + BLOCK;
    if (dataStart + dataBytes > set.size) {
      index.damage = `${where()}: declares ${dataBytes} bytes, which run past the end of the archive at byte ${set.size} (truncated?)`;
      return index;
    }
    if (type === "x" || type === "L" || type === "K") {
      const limit = type === "x" ? MAX_PAX_BYTES : MAX_LONG_NAME_BYTES;
      if (size > limit) {
        index.damage = `the ${type === "x" ? "pax" : "long name"} record at byte ${position} is larger than ${limit} bytes`;
        return index;
      }
      const data = await set.readAt(dataStart, size);
      if (type === "x") {
        const records = parsePax(data);
        if (records === undefined) {
          index.damage = `the pax record at byte ${position} is malformed`;
          return index;
        }
        pax = new Map([...(pax ?? []), ...records]);
      } else if (type === "L") {
        const name = decodeField(data);
        if (name === undefined) index.refused.push(`long name at byte ${position}: not valid UTF-8`);
        else longName = name;
      }
      // 'K' (a long link target) only precedes a link, which is refused on its own.
    } else if (type !== "g") {
      const name = entryName(block, pax, longName);
      if (name === undefined) index.refused.push(`entry at byte ${position}: its name is not valid UTF-8`);
      else classify(index, name, type, size, dataStart, pax);
      pax = undefined;
      longName = undefined;
    }
    position = dataStart + Math.ceil(dataBytes / BLOCK) * BLOCK;
  }
}

function isExtensionType(type: string): boolean {
  return type === "x" || type === "g" || type === "L" || type === "K";
}

function classify(index: TarIndex, rawName: string, type: string, size: number, dataStart: number, pax: Map<string, string> | undefined): void {
  const quoted = JSON.stringify(rawName);
  if ([...(pax?.keys() ?? [])].some((key) => key.startsWith("GNU.sparse."))) {
    index.refused.push(`${quoted}: is a sparse file, which is not supported`);
    return;
  }
  switch (type) {
    case "0":
    case "7":
      if (rawName.endsWith("/") && size === 0) index.folders.push(rawName.slice(0, -1));
      else index.files.push({ name: rawName, file: { size, dataStart } });
      return;
    case "5":
      index.folders.push(rawName.endsWith("/") ? rawName.slice(0, -1) : rawName);
      return;
    case "1":
      index.refused.push(`${quoted}: is a hard link`);
      return;
    case "2":
      index.refused.push(`${quoted}: is a symbolic link`);
      return;
    case "3":
      index.refused.push(`${quoted}: is a character device`);
      return;
    case "4":
      index.refused.push(`${quoted}: is a block device`);
      return;
    case "6":
      index.refused.push(`${quoted}: is a FIFO (named pipe)`);
      return;
    default:
      index.refused.push(`${quoted}: has the unsupported tar entry type ${JSON.stringify(type)}`);
  }
}

/** The entry's name: pax path, else GNU long name, else ustar prefix + name; undefined when not UTF-8. */
function entryName(block: Uint8Array, pax: Map<string, string> | undefined, longName: string | undefined): string | undefined {
  const fromPax = pax?.get("path");
  if (fromPax !== undefined) return fromPax;
  if (longName !== undefined) return longName;
  const name = decodeField(block.subarray(0, 100));
  if (name === undefined) return undefined;
  // Only POSIX ustar has the prefix field; GNU tar keeps other data in those bytes.
  if (Buffer.from(block.subarray(257, 263)).toString("latin1") !== "ustar\0") return name;
  const prefix = decodeField(block.subarray(345, 500));
  if (prefix === undefined) return undefined;
  return prefix === "" ? name : `${prefix}/${name}`;
}

function decodeField(bytes: Uint8Array): string | undefined {
  const end = bytes.indexOf(0);
  try {
    return utf8.decode(end < 0 ? bytes : bytes.subarray(0, end));
  } catch {
    return undefined;
  }
}

function checksumOk(block: Uint8Array): boolean {
  const stored = parseNumber(block.subarray(148, 156));
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i += 1) {
    const byte = i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  // Some old tars summed signed chars; both are accepted, as GNU tar does.
  return stored === unsigned || stored === signed;
}

/** An octal field (NUL/space padded) or a GNU base-256 one; undefined when malformed, negative or unsafe. */
export function parseNumber(field: Uint8Array): number | undefined {
  const first = field[0] ?? 0;
  if (first === 0x80) {
    let value = 0;
    for (let i = 1; i < field.length; i += 1) value = value * 256 + (field[i] ?? 0);
    return Number.isSafeInteger(value) ? value : undefined;
  }
  if (first & 0x80) return undefined;
  const text = Buffer.from(field).toString("latin1").replace(/\0.*$/s, "").trim();
  if (!/^[0-7]*$/.test(text)) return undefined;
  const value = text === "" ? 0 : Number.parseInt(text, 8);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** pax extended header records (`<len> <key>=<value>\n`), or undefined when malformed. */
export function parsePax(data: Uint8Array): Map<string, string> | undefined {
  const records = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    // Some writers pad the record set with NULs.
    if (data[at] === 0) break;
    const space = data.indexOf(0x20, at);
    if (space < 0) return undefined;
    const lengthText = Buffer.from(data.subarray(at, space)).toString("latin1");
    if (!/^\d+$/.test(lengthText)) return undefined;
    const length = Number(lengthText);
    if (length <= space - at + 1 || at + length > data.length || data[at + length - 1] !== 0x0a) return undefined;
    let record: string;
    try {
      record = utf8.decode(data.subarray(space + 1, at + length - 1));
    } catch {
      return undefined;
    }
    const equals = record.indexOf("=");
    if (equals <= 0) return undefined;
    records.set(record.slice(0, equals), record.slice(equals + 1));
    at += length;
  }
  return records;
}
