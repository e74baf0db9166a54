// A TCP proxy for tests that cuts the response to a chosen request half-way, for transports without fault injection of their own.
import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";

export interface CuttingProxy {
  /** Base URL of the proxy (same scheme and paths as the target), ending in "/". */
  url: string;
  /** Cuts the connection after about `afterBytes` response bytes of the next request whose target starts with `/${encodedPath}`. */
  cutNext(encodedPath: string, afterBytes?: number): void;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 at a free port and forwards every connection to `target` (host:port of an HTTP server). */
export async function startCuttingProxy(target: { host: string; port: number }): Promise<CuttingProxy> {
  const pending: { path: string; afterBytes: number }[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    let cutAfter: number | undefined;
    let sent = 0;
    let cutting = false;
    client.on("data", (chunk: Buffer) => {
      const line = chunk.toString("latin1").split("\r\n")[0] ?? "";
      const index = pending.findIndex((p) => line.startsWith(`GET /${p.path} `) || line.startsWith(`GET /${p.path}?`));
      if (index >= 0) {
        cutAfter = (pending[index] as { afterBytes: number }).afterBytes;
        pending.splice(index, 1);
        sent = 0;
      }
      upstream.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    upstream.on("data", (chunk: Buffer) => {
      if (cutting) return;
      if (cutAfter !== undefined && sent + chunk.length > cutAfter) {
        cutting = true;
        // The cut comes a moment after the bytes, as on a long transfer: a reset arriving with the data could drop bytes the client had not read.
        client.write(chunk.subarray(0, Math.max(0, cutAfter - sent)), () => setTimeout(end, 200));
        return;
      }
      sent += chunk.length;
      client.write(chunk);
    });
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", end);
    upstream.on("error", end);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    cutNext(path, afterBytes = 1 << 20) {
      pending.push({ path, afterBytes });
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
