// Tests the run's HTTP dispatcher against a real node:http server: the per-host connection bound holds.
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDispatcher } from "../../src/net/dispatcher.js";
import { DEFAULT_HTTP_OPTIONS } from "../../src/net/http-options.js";

let url: string;
let connections = 0;
const server = createServer((_req, res) => {
  // Slow enough that every request of a batch is in flight at once.
  setTimeout(() => res.end("ok"), 100);
});
server.on("connection", () => {
  connections += 1;
});

beforeAll(async () => {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function connectionsFor(connectionsPerHost: number | undefined, requests: number): Promise<number> {
  const dispatcher = createDispatcher({ ...DEFAULT_HTTP_OPTIONS, useEnvProxy: false, ...(connectionsPerHost !== undefined && { connectionsPerHost }) });
  connections = 0;
  try {
    const bodies = await Promise.all(Array.from({ length: requests }, async (_, i) => (await request(`${url}${i}`, { dispatcher })).body.text()));
    expect(bodies).toEqual(Array(requests).fill("ok"));
    return connections;
  } finally {
    await dispatcher.close();
  }
}

describe("HTTP dispatcher", () => {
  it("opens no more connections to a host than connectionsPerHost; requests beyond wait for one", async () => {
    expect(await connectionsFor(2, 6)).toBe(2);
  });

  it("without a bound, opens one connection per request in flight", async () => {
    expect(await connectionsFor(undefined, 6)).toBe(6);
  });
});
