// Folder listings built from the manifest alone: nginx-style autoindex HTML (crawlable by wget, lftp, rclone) and a JSON form.
import { comparePaths } from "../core/safe-path.js";
import type { Snapshot, SnapshotFile } from "./snapshot.js";

/** One row of a listing. */
export interface ListingEntry {
  name: string;
  dir: boolean;
  /** The file's mtime; for a folder, the newest mtime below it. */
  mtimeMs: number;
  /** Files only. */
  size?: number;
  /** Files only. */
  sha256?: string;
}

interface Folder {
  dirs: Map<string, number>;
  files: SnapshotFile[];
}

const indexes = new WeakMap<Snapshot, Map<string, Folder>>();

/** Folder -> its direct children, built once per snapshot on first use. */
function folderIndex(snapshot: Snapshot): Map<string, Folder> {
  let index = indexes.get(snapshot);
  if (index !== undefined) return index;
  index = new Map();
  const folder = (path: string): Folder => {
    let f = index?.get(path);
    if (f === undefined) {
      f = { dirs: new Map(), files: [] };
      index?.set(path, f);
    }
    return f;
  };
  folder("");
  for (const file of snapshot.files.values()) {
    let slash = file.path.lastIndexOf("/");
    folder(slash < 0 ? "" : file.path.slice(0, slash)).files.push(file);
    // Each folder up the chain gets this file's mtime if it is the newest below it.
    while (slash > 0) {
      const dir = file.path.slice(0, slash);
      const up = dir.lastIndexOf("/");
      const parent = folder(up < 0 ? "" : dir.slice(0, up));
      const name = dir.slice(up + 1);
      parent.dirs.set(name, Math.max(parent.dirs.get(name) ?? 0, file.mtimeMs));
      slash = up;
    }
  }
  indexes.set(snapshot, index);
  return index;
}

/** The entries of folder `dir` ("" for the root): folders first, then files, each in manifest (byte) order. Undefined when it is not a folder. */
export function listFolder(snapshot: Snapshot, dir: string): ListingEntry[] | undefined {
  const folder = folderIndex(snapshot).get(dir);
  if (folder === undefined) return undefined;
  const dirs = [...folder.dirs].sort((a, b) => comparePaths(a[0], b[0])).map(([name, mtimeMs]): ListingEntry => ({ name, dir: true, mtimeMs }));
  const files = folder.files.map((f): ListingEntry => {
    const slash = f.path.lastIndexOf("/");
    return { name: f.path.slice(slash + 1), dir: false, mtimeMs: f.mtimeMs, size: f.size, sha256: f.sha256 };
  });
  return [...dirs, ...files];
}

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const NAME_WIDTH = 50;

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** nginx's autoindex date: `28-Nov-2026 10:00`, in UTC. */
function autoindexDate(ms: number): string {
  const d = new Date(ms);
  return `${two(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
}

/**
 * The HTML page nginx's autoindex writes (exact sizes, UTC dates), so tools that parse nginx listings
 * read it unchanged: one `<a href="name">name</a>` line per entry with the name padded to 50
 * characters (longer names cut to 47 and `..>`), the date, and the size in bytes (`-` for folders).
 * Hrefs are relative, percent-encoded per segment; shown names and the title are HTML-escaped.
 */
export function renderHtmlListing(dir: string, entries: readonly ListingEntry[]): string {
  const title = escapeHtml(`/${dir === "" ? "" : `${dir}/`}`);
  const lines = [`<html>\r\n<head><title>Index of ${title}</title></head>\r\n<body>\r\n<h1>Index of ${title}</h1><hr><pre>`];
  if (dir !== "") lines.push('<a href="../">../</a>\r\n');
  for (const entry of entries) {
    const shown = entry.dir ? `${entry.name}/` : entry.name;
    const chars = [...shown];
    const display = chars.length > NAME_WIDTH ? `${escapeHtml(chars.slice(0, NAME_WIDTH - 3).join(""))}..&gt;` : escapeHtml(shown);
    const pad = " ".repeat(Math.max(0, NAME_WIDTH - chars.length));
    const size = entry.dir ? "-" : String(entry.size ?? 0);
    lines.push(`<a href="${encodeURIComponent(entry.name)}${entry.dir ? "/" : ""}">${display}</a>${pad} ${autoindexDate(entry.mtimeMs)} ${size.padStart(19)}\r\n`);
  }
  lines.push("</pre><hr></body>\r\n</html>\r\n");
  return lines.join("");
}

/**
 * nginx's `autoindex_format json` shape with the file's SHA-256 added:
 * `[{"name":"a","type":"directory","mtime":"<HTTP date>"},{"name":"f","type":"file","mtime":"...","size":12,"sha256":"<hex>"}]`.
 */
export function renderJsonListing(entries: readonly ListingEntry[]): string {
  const rows = entries.map((e) =>
    e.dir
      ? { name: e.name, type: "directory", mtime: new Date(e.mtimeMs).toUTCString() }
      : { name: e.name, type: "file", mtime: new Date(e.mtimeMs).toUTCString(), size: e.size, sha256: e.sha256 },
  );
  return `${JSON.stringify(rows)}\n`;
}
