// SHA256SUMS: the manifest's files in the text form `sha256sum -c` reads, run from the mirror root.
import type { ManifestFile } from "./manifest.js";
import { Utf8Builder } from "./utf8-builder.js";

/**
 * One `<hex>  <path>` line per file, in the given (manifest) order. Safe paths never contain a
 * backslash or newline, so no sha256sum escaping is ever needed.
 */
export function renderSha256Sums(files: readonly Pick<ManifestFile, "path" | "sha256">[]): string {
  return files.map((f) => `${f.sha256}  ${f.path}\n`).join("");
}

/** renderSha256Sums's text as UTF-8 bytes, built without the whole text as one string (see Utf8Builder). */
export function sha256SumsBytes(files: readonly Pick<ManifestFile, "path" | "sha256">[]): Buffer {
  const out = new Utf8Builder(files.length * 112);
  for (const f of files) out.put(`${f.sha256}  ${f.path}\n`);
  return out.bytes();
}

/**
 * Parses SHA256SUMS text into path -> hash. Returns the lines it could not read (1-based numbers)
 * instead of throwing, since verify reports them alongside everything else.
 */
export function parseSha256Sums(text: string): { sums: Map<string, string>; badLines: number[] } {
  const sums = new Map<string, string>();
  const badLines: number[] = [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((line, i) => {
    // "<hex>  <path>" (text mode) or "<hex> *<path>" (binary mode); both mean the same on POSIX.
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (match?.[1] === undefined || match[2] === undefined || sums.has(match[2])) badLines.push(i + 1);
    else sums.set(match[2], match[1]);
  });
  return { sums, badLines };
}
