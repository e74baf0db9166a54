// Source registry: turns `--source` specs into Source objects; the one place that knows every kind.
import { stat } from "node:fs/promises";
import type { Dispatcher } from "undici";
import { UsageError } from "../core/errors.js";
import type { Source } from "../core/source.js";
import { createDispatcher } from "../net/dispatcher.js";
import type { HttpOptions } from "../net/http-options.js";
import { folderPathOf } from "../core/location.js";
import { createFolderSource } from "./folder.js";
import { createFtpSource } from "./ftp.js";
import { createHttpSource } from "./http.js";
import { createSmbSource } from "./smb.js";

/** Secrets some kinds need, resolved by reference beforehand (never from a URL). */
export interface SourceSecrets {
  ftp?: { password?: string };
  smb?: { password?: string };
}

export interface OpenedSources {
  sources: Source[];
  /** Closes every source and the shared connection pool. */
  close(): Promise<void>;
}

/** Opens sources for `specs` in order. Throws UsageError naming a spec of an unknown or unsupported kind. */
export function openSources(specs: readonly string[], http: HttpOptions, secrets: SourceSecrets = {}): OpenedSources {
  let dispatcher: Dispatcher | undefined;
  const sources = specs.map((spec, i) => {
    const folder = folderPathOf(spec);
    if (folder !== undefined) return createFolderSource(folder);
    let url: URL;
    try {
      url = new URL(spec);
    } catch {
      throw new UsageError(`source ${i + 1}: not a URL or folder path`);
    }
    if (url.password !== "") {
      // Said without echoing the spec, which holds the password.
      throw new UsageError(`source ${i + 1}: put no password in a source URL; credentials are given by reference (environment variable or file)`);
    }
    if (url.protocol === "http:" || url.protocol === "https:") {
      dispatcher ??= createDispatcher(http);
      return createHttpSource(url, dispatcher, http);
    }
    if (url.protocol === "ftp:" || url.protocol === "ftps:") return createFtpSource(url, { http, ...(secrets.ftp?.password !== undefined && { password: secrets.ftp.password }) });
    if (url.protocol === "smb:") return createSmbSource(spec, { http, ...(secrets.smb?.password !== undefined && { password: secrets.smb.password }) });
    throw new UsageError(`source ${i + 1}: ${url.protocol}// sources are not supported yet (supported: http://, https://, ftp://, ftps://, smb://, file:// and folder paths)`);
  });
  return {
    sources,
    async close() {
      await Promise.all(sources.map((s) => s.close()));
      await dispatcher?.close();
    },
  };
}

/**
 * Opens the sources of `pull`: like openSources, but a path naming a file (or the base name of split
 * volumes) is an exported archive. A path that does not exist yet stays a folder source, so a medium
 * not inserted is one failed source among several, not a failed command.
 */
export async function openPullSources(specs: readonly string[], http: HttpOptions, secrets: SourceSecrets = {}): Promise<OpenedSources> {
  const opened = openSources(specs, http, secrets);
  const isArchive = async (path: string) => {
    const info = await stat(path).catch(() => undefined);
    if (info) return info.isFile();
    return stat(`${path}.001`).then(
      () => true,
      () => false,
    );
  };
  const sources = await Promise.all(
    specs.map(async (spec, i) => {
      const folder = folderPathOf(spec);
      return folder !== undefined && (await isArchive(folder)) ? openMediumSource(folder) : (opened.sources[i] as Source);
    }),
  );
  return {
    sources,
    async close() {
      await Promise.all(sources.map((s) => (opened.sources.includes(s) ? undefined : s.close())));
      await opened.close();
    },
  };
}

/**
 * Opens a removable medium: a folder (an exported mirror) as a folder source, a file as an archive,
 * and a base name whose volumes exist (`full.tar` for `full.tar.001`, ...) as a split archive.
 * Throws NotFoundError/IoError naming the medium, or what openArchive throws.
 */
export async function openMediumSource(path: string): Promise<Source> {
  const isFolder = await stat(path).then(
    (info) => info.isDirectory(),
    () => false,
  );
  if (isFolder) return createFolderSource(path);
  // Anything else is an archive, its volumes, or missing: the archive reader resolves volumes and
  // names the medium when there is none. Loaded on use: only archives need it.
  const { openArchiveSource } = await import("./archive.js");
  return openArchiveSource(path);
}
