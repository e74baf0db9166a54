// Store registry: turns a `--dest` spec into a Store; the one place that knows every kind.
import { UsageError } from "../core/errors.js";
import { folderPathOf } from "../core/location.js";
import type { Store } from "../core/store.js";
import type { HttpOptions } from "../net/http-options.js";
import { createFolderStore } from "./folder.js";
import { createSmbStore } from "./smb.js";

export interface StoreOptions {
  /** Timeouts for a store reached over the network. */
  http: HttpOptions;
  /** Password of the user named in an smb:// destination, given by reference. */
  smbPassword?: string | undefined;
}

/** Opens the store for `spec`: a folder (a path or file://) or a share (smb://). Throws UsageError for any other kind. */
export function openStore(spec: string, options: StoreOptions): Store {
  const folder = folderPathOf(spec);
  if (folder !== undefined) return createFolderStore(folder);
  if (/^smb:\/\//i.test(spec)) return createSmbStore(spec, { http: options.http, ...(options.smbPassword !== undefined && { password: options.smbPassword }) });
  // The URL is not echoed: one of another scheme may carry a password.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(spec)?.[1]?.toLowerCase();
  throw new UsageError(`destination: a ${scheme}:// URL cannot hold a mirror; a mirror lives in a folder (a path or file://) or on a share (smb://[DOMAIN;]USER@host/share/path)`);
}
