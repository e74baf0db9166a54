// Content-Type by file extension, for the kinds of files update mirrors carry; application/octet-stream otherwise.

export const OCTET_STREAM = "application/octet-stream";

const TEXT = "text/plain; charset=utf-8";

const BY_EXTENSION: ReadonlyMap<string, string> = new Map([
  ["txt", TEXT],
  ["log", TEXT],
  ["md", "text/markdown; charset=utf-8"],
  ["csv", "text/csv; charset=utf-8"],
  ["htm", "text/html; charset=utf-8"],
  ["html", "text/html; charset=utf-8"],
  ["css", "text/css; charset=utf-8"],
  ["js", "text/javascript; charset=utf-8"],
  ["json", "application/json"],
  ["xml", "application/xml"],
  ["pdf", "application/pdf"],
  ["png", "image/png"],
  ["jpg", "image/jpeg"],
  ["jpeg", "image/jpeg"],
  ["gif", "image/gif"],
  ["svg", "image/svg+xml"],
  ["ico", "image/vnd.microsoft.icon"],
  ["zip", "application/zip"],
  ["gz", "application/gzip"],
  ["tgz", "application/gzip"],
  ["bz2", "application/x-bzip2"],
  ["xz", "application/x-xz"],
  ["zst", "application/zstd"],
  ["7z", "application/x-7z-compressed"],
  ["tar", "application/x-tar"],
  ["cab", "application/vnd.ms-cab-compressed"],
  ["msi", "application/x-msi"],
  ["exe", "application/vnd.microsoft.portable-executable"],
  ["dll", "application/vnd.microsoft.portable-executable"],
  ["deb", "application/vnd.debian.binary-package"],
  ["rpm", "application/x-rpm"],
  ["iso", "application/x-iso9660-image"],
  ["asc", "application/pgp-signature"],
  ["sig", "application/pgp-signature"],
  ["minisig", TEXT],
]);

/** The media type for a file name (its last extension, case-insensitive), or application/octet-stream. */
export function contentTypeFor(path: string): string {
  const dot = path.lastIndexOf(".");
  if (dot < 0 || dot < path.lastIndexOf("/")) return OCTET_STREAM;
  return BY_EXTENSION.get(path.slice(dot + 1).toLowerCase()) ?? OCTET_STREAM;
}
