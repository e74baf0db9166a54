// The real vsftpd that .ci/services.sh starts: its settings from the environment, trees published into it, and a control-channel proxy that cuts transfers.
import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { copyTree, servedFolder } from "../support/served-folder.js";

/** One FTP server of .ci/services.sh and a user on it. */
export interface FtpServer {
  /** ftp://127.0.0.1:PORT/ (no user). */
  url: URL;
  user: string;
  password: string;
  /** The user's (chrooted) home on disk: trees written here appear at ftp://USER@host:port/NAME/. */
  root: string;
  /** PEM file of the test CA that signed the server's certificate (for ftps://). */
  ca: string;
}

/** What `bash .ci/services.sh env` exports for vsftpd (LIST only); undefined when the service is not there. */
export interface FtpService extends FtpServer {
  /** vsftpd's log (one "OK DOWNLOAD" line per finished RETR). */
  log: string;
  /** The anonymous user's (chrooted, read-only) root on disk. */
  anonRoot: string;
}

/** pure-ftpd, which lists with MLSD (exact sizes and mtimes); undefined when it is not there. */
export function ftpMlsdServer(): FtpServer | undefined {
  const env = process.env;
  if (!env.UM_FTP_MLSD_URL || !env.UM_FTP_MLSD_USER || !env.UM_FTP_MLSD_PASSWORD || !env.UM_FTP_MLSD_ROOT || !env.UM_TEST_CA) return undefined;
  return { url: new URL(env.UM_FTP_MLSD_URL), user: env.UM_FTP_MLSD_USER, password: env.UM_FTP_MLSD_PASSWORD, root: env.UM_FTP_MLSD_ROOT, ca: env.UM_TEST_CA };
}

export function ftpService(): FtpService | undefined {
  const env = process.env;
  if (!env.UM_FTP_URL || !env.UM_FTP_USER || !env.UM_FTP_PASSWORD || !env.UM_FTP_ROOT || !env.UM_FTP_ANON_ROOT || !env.UM_FTP_LOG || !env.UM_TEST_CA) return undefined;
  return {
    url: new URL(env.UM_FTP_URL),
    user: env.UM_FTP_USER,
    password: env.UM_FTP_PASSWORD,
    root: env.UM_FTP_ROOT,
    anonRoot: env.UM_FTP_ANON_ROOT,
    log: env.UM_FTP_LOG,
    ca: env.UM_TEST_CA,
  };
}

export const FTP_SKIP_REASON = "no vsftpd or pure-ftpd (run `bash .ci/services.sh up` as root and eval `bash .ci/services.sh env`; .ci/run does)";

/** A fresh folder in the server's tree for one test (see test/support/served-folder.ts). */
export const ftpFolder = (service: FtpServer, prefix: string) => servedFolder(service.root, prefix);
export { copyTree };

/** `ftp[s]://USER@host:port/NAME/` of a folder in the user's home. */
export function ftpUrl(service: FtpServer, name: string, scheme: "ftp" | "ftps" = "ftp", host = service.url.hostname, port = service.url.port): string {
  return `${scheme}://${encodeURIComponent(service.user)}@${host}:${port}/${encodeURIComponent(name)}/`;
}

export interface FtpCuttingProxy {
  port: number;
  /** Cuts the data connection of the next RETR whose path ends with `/${path}` after about `afterBytes` bytes. */
  cutNext(path: string, afterBytes?: number): void;
  /** Every command the clients sent (PASS lines left out). */
  commands: string[];
  close(): Promise<void>;
}

/**
 * A plain-FTP proxy on 127.0.0.1:0 in front of `target`: it relays the control connection line by line
 * and rewrites passive-mode replies (227/229) to data relays of its own, which can cut a transfer
 * half-way the way a network would. The server then answers 426 on the control connection.
 */
export async function startFtpCuttingProxy(target: { host: string; port: number }): Promise<FtpCuttingProxy> {
  const pending: { path: string; afterBytes: number }[] = [];
  const commands: string[] = [];
  const sockets = new Set<Socket>();
  const servers = new Set<Server>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
  };

  /** Opens a one-shot data relay to the server's passive port; resolves with the relay's port. */
  async function dataRelay(serverPort: number, session: { cut?: number }): Promise<number> {
    const relay = createServer((client) => {
      relay.close();
      servers.delete(relay);
      track(client);
      const upstream = connect(serverPort, target.host);
      track(upstream);
      let sent = 0;
      let cutting = false;
      upstream.on("data", (chunk: Buffer) => {
        if (cutting) return;
        const cut = session.cut;
        if (cut !== undefined && sent + chunk.length > cut) {
          cutting = true;
          session.cut = undefined;
          client.write(chunk.subarray(0, Math.max(0, cut - sent)), () =>
            setTimeout(() => {
              client.destroy();
              upstream.destroy();
            }, 100),
          );
          return;
        }
        sent += chunk.length;
        client.write(chunk);
      });
      client.on("data", (chunk: Buffer) => upstream.write(chunk));
      upstream.on("end", () => client.end());
      client.on("end", () => upstream.end());
      upstream.on("close", () => client.destroy());
      client.on("close", () => upstream.destroy());
    });
    servers.add(relay);
    relay.listen(0, "127.0.0.1");
    await once(relay, "listening");
    return (relay.address() as AddressInfo).port;
  }

  const control = createServer((client) => {
    track(client);
    const upstream = connect(target.port, target.host);
    track(upstream);
    const session: { cut?: number } = {};
    let fromClient = "";
    let fromServer = "";
    // Lines from the server are relayed in order, each passive reply after its relay is listening.
    let chain = Promise.resolve();
    client.on("data", (chunk: Buffer) => {
      // latin1 maps bytes 1:1, so names in UTF-8 split across chunks pass through intact.
      fromClient += chunk.toString("latin1");
      for (let eol = fromClient.indexOf("\r\n"); eol >= 0; eol = fromClient.indexOf("\r\n")) {
        const line = fromClient.slice(0, eol);
        fromClient = fromClient.slice(eol + 2);
        if (!line.startsWith("PASS ")) commands.push(line);
        if (line.startsWith("RETR ")) {
          const i = pending.findIndex((p) => line.endsWith(`/${Buffer.from(p.path).toString("latin1")}`));
          if (i >= 0) {
            session.cut = (pending[i] as { afterBytes: number }).afterBytes;
            pending.splice(i, 1);
          }
        }
        upstream.write(Buffer.from(`${line}\r\n`, "latin1"));
      }
    });
    upstream.on("data", (chunk: Buffer) => {
      fromServer += chunk.toString("latin1");
      for (let eol = fromServer.indexOf("\r\n"); eol >= 0; eol = fromServer.indexOf("\r\n")) {
        const line = fromServer.slice(0, eol);
        fromServer = fromServer.slice(eol + 2);
        chain = chain.then(async () => {
          let out = line;
          const epsv = /^229 (.*)\(\|\|\|(\d+)\|\)/.exec(line);
          const pasv = /^227 .*\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(line);
          if (epsv) out = `229 ${epsv[1]}(|||${await dataRelay(Number(epsv[2]), session)}|)`;
          else if (pasv) {
            const port = await dataRelay(Number(pasv[5]) * 256 + Number(pasv[6]), session);
            out = `227 Entering Passive Mode (127,0,0,1,${port >> 8},${port & 255}).`;
          }
          client.write(Buffer.from(`${out}\r\n`, "latin1"));
        });
      }
    });
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
  });
  servers.add(control);
  control.listen(0, "127.0.0.1");
  await once(control, "listening");
  return {
    port: (control.address() as AddressInfo).port,
    cutNext(path, afterBytes = 256 * 1024) {
      pending.push({ path, afterBytes });
    },
    commands,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([...servers].map((s) => new Promise((resolve) => s.close(resolve))));
    },
  };
}
