// Where a source or destination spec points: a local folder (plain path or file:// URL) or a URL of some scheme.

/** Turns `file:///x` or a plain path into a folder path; undefined for any other URL. */
export function folderPathOf(spec: string): string | undefined {
  if (spec.startsWith("file://")) return decodeURIComponent(new URL(spec).pathname);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) return undefined;
  return spec;
}
