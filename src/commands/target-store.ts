// Opens what `status` and `history` read: a mirror (folder or share) or an endpoint folder, with the share's password from the config.
import type { Config } from "../config/schema.js";
import { resolveSecret } from "../config/secrets.js";
import type { Store } from "../core/store.js";
import { DEFAULT_HTTP_OPTIONS } from "../net/http-options.js";

export interface OpenedTarget {
  store: Store;
  kind: "mirror" | "endpoint";
}

/**
 * Opens the store at `path` for reading. `kind` when known (a job's), else an endpoint folder is told
 * apart from a mirror by its hidden sibling. Throws ConfigError when the share's password reference
 * cannot be resolved, UsageError for a kind that holds no mirror.
 */
export async function openTarget(path: string, config: Config, kind?: "mirror" | "endpoint"): Promise<OpenedTarget> {
  const [{ createEndpointStore, isEndpoint }, { openStore }] = await Promise.all([import("../stores/endpoint.js"), import("../stores/registry.js")]);
  const isShare = /^smb:\/\//i.test(path);
  const resolved = kind ?? (!isShare && (await isEndpoint(path)) ? "endpoint" : "mirror");
  if (resolved === "endpoint") return { store: createEndpointStore(path), kind: resolved };
  const smb = config.network.smb;
  const smbPassword = isShare ? await resolveSecret({ env: smb?.passwordEnv, file: smb?.passwordFile }, "network.smb password") : undefined;
  return { store: openStore(path, { http: DEFAULT_HTTP_OPTIONS, smbPassword }), kind: resolved };
}
