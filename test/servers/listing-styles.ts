// Directory listing pages as the common servers render them (nginx, Apache, IIS, lighttpd, Caddy), for crawling tests.
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

export const LISTING_STYLES = ["nginx", "apache", "iis", "lighttpd", "caddy"] as const;
export type ListingStyle = (typeof LISTING_STYLES)[number];

interface Row {
  name: string;
  dir: boolean;
  size: number;
  mtime: Date;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const pad = (n: number) => String(n).padStart(2, "0");
const esc = (t: string) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const href = (r: Row) => `${encodeURIComponent(r.name)}${r.dir ? "/" : ""}`;

/** Apache and lighttpd round sizes: exact bytes only below 1 KiB. */
function human(size: number): string {
  if (size < 1024) return String(size);
  const units = ["K", "M", "G", "T"];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)}${units[unit]}`;
}

const RENDER: Record<ListingStyle, (title: string, rows: Row[]) => string> = {
  // nginx autoindex (exact sizes, GMT): the name padded to 50 columns, date, size right-aligned.
  nginx: (title, rows) => {
    const m = (d: Date) => `${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    const lines = rows.map((r) => {
      const shown = r.name.length > 50 ? `${r.name.slice(0, 47)}..&gt;` : esc(r.name) + (r.dir ? "/" : "");
      return `<a href="${href(r)}">${shown}</a>${" ".repeat(Math.max(1, 51 - r.name.length))}${m(r.mtime)} ${(r.dir ? "-" : String(r.size)).padStart(19)}`;
    });
    return `<html>\r\n<head><title>Index of ${esc(title)}</title></head>\r\n<body>\r\n<h1>Index of ${esc(title)}</h1><hr><pre><a href="../">../</a>\r\n${lines.join("\r\n")}\r\n</pre><hr></body>\r\n</html>\r\n`;
  },
  // Apache mod_autoindex with FancyIndexing in a table: sort links with queries, a parent link, rounded sizes.
  apache: (title, rows) => {
    const m = (d: Date) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    const body = rows
      .map((r) => `<tr><td valign="top"><img src="/icons/${r.dir ? "folder" : "unknown"}.gif" alt="[${r.dir ? "DIR" : "   "}]"></td><td><a href="${href(r)}">${esc(r.name)}${r.dir ? "/" : ""}</a></td><td align="right">${m(r.mtime)}  </td><td align="right">${r.dir ? "  - " : human(r.size)}</td><td>&nbsp;</td></tr>`)
      .join("\n");
    return `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n  <title>Index of ${esc(title)}</title>\n </head>\n <body>\n<h1>Index of ${esc(title)}</h1>\n  <table>\n   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>\n   <tr><th colspan="5"><hr></th></tr>\n<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td><td>&nbsp;</td></tr>\n${body}\n   <tr><th colspan="5"><hr></th></tr>\n</table>\n</body></html>\n`;
  },
  // IIS directoryBrowse: date and exact size before an absolute link, <br>-separated, &lt;dir&gt; for folders.
  iis: (title, rows) => {
    const m = (d: Date) => {
      const h = d.getUTCHours();
      return `${DAYS[d.getUTCDay()]}, ${["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"][d.getUTCMonth()]} ${d.getUTCDate()}, ${d.getUTCFullYear()} ${String(h % 12 === 0 ? 12 : h % 12).padStart(2)}:${pad(d.getUTCMinutes())} ${h < 12 ? "AM" : "PM"}`;
    };
    const base = title.endsWith("/") ? title : `${title}/`;
    const body = rows.map((r) => `${m(r.mtime)} ${(r.dir ? "&lt;dir&gt;" : String(r.size)).padStart(12)} <A HREF="${base.split("/").map(encodeURIComponent).join("/")}${href(r)}">${esc(r.name)}</A><br>`).join("");
    return `<html><head><title>localhost - ${esc(title)}</title></head><body><H1>localhost - ${esc(title)}</H1><hr>\n\n<pre><A HREF="/">[To Parent Directory]</A><br><br>${body}</pre><hr></body></html>`;
  },
  // lighttpd mod_dirlisting: a table with classes, dates like 2026-Nov-28 12:00:00, rounded sizes.
  lighttpd: (title, rows) => {
    const m = (d: Date) => `${d.getUTCFullYear()}-${MONTHS[d.getUTCMonth()]}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    const body = rows
      .map((r) => `<tr class="${r.dir ? "d" : ""}"><td class="n"><a href="${href(r)}">${esc(r.name)}</a>${r.dir ? "/" : ""}</td><td class="m">${m(r.mtime)}</td><td class="s">${r.dir ? "- &nbsp;" : `${human(r.size)}B`}</td><td class="t">${r.dir ? "Directory" : "application/octet-stream"}</td></tr>`)
      .join("\n");
    return `<!DOCTYPE html>\n<html>\n<head>\n<title>Index of ${esc(title)}</title>\n</head>\n<body>\n<h2>Index of ${esc(title)}</h2>\n<div class="list">\n<table summary="Directory Listing" cellpadding="0" cellspacing="0">\n<thead><tr><th class="n">Name</th><th class="m">Last Modified</th><th class="s">Size</th><th class="t">Type</th></tr></thead>\n<tbody>\n<tr class="d"><td class="n"><a href="../">..</a>/</td><td class="m">&nbsp;</td><td class="s">- &nbsp;</td><td class="t">Directory</td></tr>\n${body}\n</tbody>\n</table>\n</div>\n</body>\n</html>\n`;
  },
  // Caddy file_server browse: exact size in data-size, <time datetime>, rows spread over several lines.
  caddy: (title, rows) => {
    const body = rows
      .map(
        (r) =>
          `<tr class="file">\n  <td></td>\n  <td>\n    <a href="./${href(r)}">\n      <span class="name">${esc(r.name)}</span>\n    </a>\n  </td>\n  <td data-order="${r.dir ? -1 : r.size}">${r.dir ? "&mdash;" : `<div class="sizebar"><div class="sizebar-text">${human(r.size)}B</div></div>`}</td>\n  <td class="timestamp hideable"><time datetime="${r.mtime.toISOString()}">${r.mtime.toUTCString()}</time></td>\n</tr>`.replace(
            '<td data-order="',
            r.dir ? '<td data-order="' : `<td data-size="${r.size}" data-order="`,
          ),
      )
      .join("\n");
    return `<!DOCTYPE html>\n<html>\n<head><title>${esc(title)}</title></head>\n<body>\n<main>\n<table aria-describedby="summary">\n<thead><tr><th></th><th><a href="?sort=name&amp;order=desc">Name</a></th><th><a href="?sort=size&amp;order=asc">Size</a></th><th class="hideable"><a href="?sort=time&amp;order=asc">Modified</a></th></tr></thead>\n<tbody>\n<tr><td></td><td><a href="..">Up</a></td><td>&mdash;</td><td class="hideable">&mdash;</td></tr>\n${body}\n</tbody>\n</table>\n</main>\n</body>\n</html>\n`;
  },
};

/** The listing page of folder `dir` (absolute path on disk), titled with its URL path `title`. */
export async function renderListing(style: ListingStyle, dir: string, title: string): Promise<string> {
  const rows: Row[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const info = await stat(join(dir, entry.name));
    rows.push({ name: entry.name, dir: info.isDirectory(), size: info.size, mtime: info.mtime });
  }
  rows.sort((a, b) => (a.name < b.name ? -1 : 1));
  return RENDER[style](title, rows);
}
