// Parses smb://[DOMAIN;]USER@HOST[:PORT]/SHARE/PATH: where to connect and as whom; passwords are refused (they come by reference).
import { UsageError } from "../core/errors.js";

export const SMB_DEFAULT_PORT = 445;

export interface SmbUrl {
  host: string;
  port: number;
  share: string;
  /** Folders below the share root, decoded ("a/b" is ["a", "b"]); empty for the share root. */
  path: string[];
  /** NTLM domain or workgroup; "" when the URL names none. */
  domain: string;
  /** undefined: an anonymous (guest) login. */
  user?: string;
  /** smb://host[:port]/share/path/ with no user or domain: safe for messages and logs. */
  label: string;
}

/**
 * Parses an SMB URL. `what` names it in errors (e.g. "source 2"). The URL itself is never echoed, since
 * a refused one may hold a password. Throws UsageError.
 */
export function parseSmbUrl(spec: string, what = "SMB URL"): SmbUrl {
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw new UsageError(`${what}: not a URL like smb://[DOMAIN;]USER@host[:port]/share/path`);
  }
  if (url.protocol !== "smb:") throw new UsageError(`${what}: not an smb:// URL`);
  if (url.password !== "") {
    throw new UsageError(`${what}: put no password in an smb:// URL; give it by reference (--smb-password-env or --smb-password-file)`);
  }
  if (url.search !== "" || url.hash !== "") throw new UsageError(`${what}: an smb:// URL takes no ?query or #fragment`);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "") throw new UsageError(`${what}: no host in the smb:// URL`);
  const port = url.port === "" ? SMB_DEFAULT_PORT : Number(url.port);
  let segments: string[];
  let userinfo: string;
  try {
    segments = url.pathname.split("/").filter((s) => s !== "").map((s) => decodeURIComponent(s));
    userinfo = decodeURIComponent(url.username);
  } catch {
    throw new UsageError(`${what}: the smb:// URL has a malformed %-escape`);
  }
  const [share, ...path] = segments;
  if (share === undefined) throw new UsageError(`${what}: the smb:// URL names no share (smb://host/SHARE/path)`);
  for (const segment of segments) {
    if (segment === "." || segment === ".." || /[\\\0]/.test(segment)) {
      throw new UsageError(`${what}: the smb:// URL's path has a "." or ".." segment, a backslash or a NUL`);
    }
  }
  let domain = "";
  let user: string | undefined;
  if (userinfo !== "") {
    const semi = userinfo.indexOf(";");
    if (semi >= 0) {
      domain = userinfo.slice(0, semi);
      user = userinfo.slice(semi + 1);
    } else user = userinfo;
    if (user === "") throw new UsageError(`${what}: the smb:// URL names a domain but no user (smb://DOMAIN;USER@host/share)`);
  }
  const hostPart = host.includes(":") ? `[${host}]` : host;
  const label = `smb://${hostPart}${url.port === "" ? "" : `:${port}`}/${[share, ...path].map(encodeURIComponent).join("/")}/`;
  return { host, port, share, path, domain, ...(user !== undefined && { user }), label };
}
