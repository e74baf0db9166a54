// Reading HTML directory listings (nginx, Apache, IIS, lighttpd, Caddy autoindex styles, and our own `serve`) into entries with size and mtime hints.

/** One link of a listing page that names a direct child of the listed folder. */
export interface ListingLink {
  /** The child's name, percent-decoded. */
  name: string;
  dir: boolean;
  /** Only when the page states it in bytes; a rounded "1.2K" is no size. */
  size?: number;
  /** When the page shows a date this reader knows; only compared with the same page's next reading. */
  mtimeMs?: number;
}

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };
const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " " };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, body: string) => {
    if (body[0] === "#") {
      const code = body[1] === "x" || body[1] === "X" ? Number.parseInt(body.slice(2), 16) : Number(body.slice(1));
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[body.toLowerCase()] ?? whole;
  });
}

function utc(year: number, monthIndex: number | undefined, day: number, hour: number, minute: number, second = 0): number | undefined {
  if (monthIndex === undefined) return undefined;
  const ms = Date.UTC(year, monthIndex, day, hour, minute, second);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Group `i` of a match as a number (NaN when absent, which utc() turns into no date). */
const num = (m: RegExpExecArray, i: number) => Number(m[i] ?? Number.NaN);
const month = (m: RegExpExecArray, i: number) => MONTHS[(m[i] ?? "").slice(0, 3).toLowerCase()];
const hour12 = (m: RegExpExecArray, i: number) => (num(m, i) % 12) + (m[i + 2] === "PM" ? 12 : 0);

/** The date formats autoindex pages use; the time zone does not matter, only that the same text gives the same number. */
const DATES: { re: RegExp; read: (m: RegExpExecArray) => number | undefined }[] = [
  // nginx, Apache <pre>: 28-Nov-2026 12:00(:00)
  { re: /\b(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2})(?::(\d{2}))?/, read: (m) => utc(num(m, 3), month(m, 2), num(m, 1), num(m, 4), num(m, 5), Number(m[6] ?? 0)) },
  // lighttpd: 2026-Nov-28 12:00:00
  { re: /\b(\d{4})-([A-Za-z]{3})-(\d{1,2}) (\d{2}):(\d{2})(?::(\d{2}))?/, read: (m) => utc(num(m, 1), month(m, 2), num(m, 3), num(m, 4), num(m, 5), Number(m[6] ?? 0)) },
  // Apache tables, ISO with a space or a T (Caddy's datetime attribute is read the same way)
  { re: /\b(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?/, read: (m) => utc(num(m, 1), num(m, 2) - 1, num(m, 3), num(m, 4), num(m, 5), Number(m[6] ?? 0)) },
  // IIS: Friday, November 28, 2026  1:05 PM
  { re: /\b[A-Za-z]+, ([A-Za-z]+) (\d{1,2}), (\d{4})\s+(\d{1,2}):(\d{2}) ([AP]M)/, read: (m) => utc(num(m, 3), month(m, 1), num(m, 2), hour12(m, 4), num(m, 5)) },
  // IIS, US short form: 11/28/2026  1:05 PM
  { re: /\b(\d{1,2})\/(\d{1,2})\/(\d{4})\s+(\d{1,2}):(\d{2}) ([AP]M)/, read: (m) => utc(num(m, 3), num(m, 1) - 1, num(m, 2), hour12(m, 4), num(m, 5)) },
];

function readDate(text: string): { ms: number; rest: string } | undefined {
  for (const { re, read } of DATES) {
    const m = re.exec(text);
    if (!m) continue;
    const ms = read(m);
    if (ms !== undefined) return { ms, rest: `${text.slice(0, m.index)} ${text.slice(m.index + m[0].length)}` };
  }
  return undefined;
}

/**
 * Splits a page into the pieces that describe one entry each: table rows when the page is a table
 * (Apache, lighttpd, Caddy), otherwise lines (nginx, Apache <pre>, our `serve`) or <br>-separated
 * runs (IIS, whose date and size come before the link).
 */
function rowsOf(html: string): string[] {
  if (/<tr[\s>]/i.test(html)) return html.split(/<tr[\s>]/i).slice(1);
  return html.split(/\r?\n|<br\s*\/?>/i);
}

const ANCHOR = /<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>([\s\S]*?)<\/a\s*>/gi;

/**
 * The direct children a listing page links to, for the folder at `pageUrl` (which ends in "/").
 * Links to other hosts or folders, the parent, sort links with a query, fragments, and names that do
 * not decode are left out; the caller still checks each name against the path rules.
 */
export function parseListing(html: string, pageUrl: URL): ListingLink[] {
  const seen = new Map<string, ListingLink>();
  for (const row of rowsOf(html)) {
    const anchors = [...row.matchAll(ANCHOR)];
    for (const a of anchors) {
      const raw = decodeEntities(a[1] ?? a[2] ?? a[3] ?? "");
      if (raw === "" || raw.includes("?") || raw.includes("#")) continue;
      let url: URL;
      try {
        url = new URL(raw, pageUrl);
      } catch {
        continue;
      }
      if (url.origin !== pageUrl.origin || !url.pathname.startsWith(pageUrl.pathname)) continue;
      const tail = url.pathname.slice(pageUrl.pathname.length);
      const dir = tail.endsWith("/");
      const encoded = dir ? tail.slice(0, -1) : tail;
      if (encoded === "" || encoded.includes("/")) continue;
      let name: string;
      try {
        name = decodeURIComponent(encoded);
      } catch {
        continue;
      }
      // An encoded separator would name something other than the child the link points at.
      if (name.includes("/") || name.includes("\\") || seen.has(name)) continue;
      const link: ListingLink = { name, dir };
      if (anchors.length === 1) {
        // Attributes first (Caddy: data-size, <time datetime>), then the row's text without the link itself.
        const exact = /\bdata-size\s*=\s*"(\d+)"/i.exec(row)?.[1];
        const datetime = /\bdatetime\s*=\s*"([^"]+)"/i.exec(row)?.[1];
        const text = decodeEntities(row.replace(a[0], " ").replace(/<[^>]*>/g, " "));
        const date = readDate(datetime ?? text) ?? readDate(text);
        if (date) link.mtimeMs = date.ms;
        const rest = date && datetime === undefined ? date.rest : text;
        const numbers = rest.split(/\s+/).filter((t) => /^\d+$/.test(t));
        const size = exact ?? (numbers.length === 1 ? numbers[0] : undefined);
        if (!dir && size !== undefined && Number.isSafeInteger(Number(size))) link.size = Number(size);
      }
      seen.set(name, link);
    }
  }
  return [...seen.values()];
}
