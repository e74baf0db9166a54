// The real Samba that .ci/samba.sh starts: its settings from the environment, trees published into its share, and a TCP proxy that cuts a read.
import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import { copyTree, servedFolder } from "../support/served-folder.js";

/** What `bash .ci/samba.sh env` exports; undefined when the service is not there. */
export interface SmbService {
  /** smb://USER@127.0.0.1:PORT/data (the password is not in it). */
  url: URL;
  user: string;
  password: string;
  /** The data share's folder on disk: trees written here appear at smb://USER@host:port/data/NAME/. */
  root: string;
  /** The same share on a second smbd with `server signing = mandatory`. */
  signingUrl?: URL;
}

export function smbService(): SmbService | undefined {
  const env = process.env;
  if (!env.UM_SMB_URL || !env.UM_SMB_USER || !env.UM_SMB_PASSWORD || !env.UM_SMB_ROOT) return undefined;
  return {
    url: new URL(env.UM_SMB_URL),
    user: env.UM_SMB_USER,
    password: env.UM_SMB_PASSWORD,
    root: env.UM_SMB_ROOT,
    ...(env.UM_SMB_SIGNING_URL && { signingUrl: new URL(env.UM_SMB_SIGNING_URL) }),
  };
}

export const SMB_SKIP_REASON = "no Samba (run `eval \"$(bash .ci/samba.sh up)\"` as root; .ci/run does)";

/** A fresh folder in the server's tree for one test (see test/support/served-folder.ts). */
export const smbFolder = (service: SmbService, prefix: string) => servedFolder(service.root, prefix);
export { copyTree };

/** `smb://USER@host:port/data/NAME` of a folder in the share, optionally through another port (a proxy). */
export function smbUrl(service: SmbService, name: string, port = service.url.port, base: URL = service.url): string {
  return `smb://${base.username}@${base.hostname}:${port}${base.pathname.replace(/\/$/, "")}/${encodeURIComponent(name)}`;
}

export interface SmbCuttingProxy {
  port: number;
  /** Cuts the connection once about `afterBytes` have come back after the next request naming `path` (as SMB sends it: UTF-16, backslashes). */
  cutNext(path: string, afterBytes?: number): void;
  /** Connections accepted so far (a cut one is replaced by the client's next). */
  connections: number;
  close(): Promise<void>;
}

/**
 * A TCP proxy on 127.0.0.1:0 in front of an SMB server that can drop the connection in the middle of a
 * read the way a network would. SMB carries every request on one connection, so the cut fails
 * everything in flight and the client must connect again.
 */
export async function startSmbCuttingProxy(target: { host: string; port: number }): Promise<SmbCuttingProxy> {
  const pending: { needle: Buffer; afterBytes: number }[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((client) => {
    connections += 1;
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    let cutAfter: number | undefined;
    let sent = 0;
    client.on("data", (chunk: Buffer) => {
      if (cutAfter === undefined) {
        const i = pending.findIndex((p) => chunk.includes(p.needle));
        if (i >= 0) {
          cutAfter = sent + (pending[i] as { afterBytes: number }).afterBytes;
          pending.splice(i, 1);
        }
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (cutAfter !== undefined && sent + chunk.length > cutAfter) {
        client.write(chunk.subarray(0, Math.max(0, cutAfter - sent)), () => {
          client.destroy();
          upstream.destroy();
        });
        cutAfter = undefined;
        sent = Number.POSITIVE_INFINITY;
        return;
      }
      sent += chunk.length;
      client.write(chunk);
    });
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    cutNext(path, afterBytes = 256 * 1024) {
      pending.push({ needle: Buffer.from(path.replace(/\//g, "\\"), "utf16le"), afterBytes });
    },
    get connections() {
      return connections;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
