// Hostile requests against `serve`: every traversal encoding over raw sockets, symlinks out of the mirror, huge and slow headers, thousands of idle connections; not one byte from outside leaks and the server keeps answering.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeUpstream } from "../servers/vendor-server.js";
import { http, type InProcessServer, type RawResponse, rawGet, rawRequest, serveInProcess } from "./serve-harness.js";

// Recognisable bytes beside the mirror: no response may ever contain them.
const SECRET = `TOP-SECRET-${randomBytes(16).toString("hex")}`;
const SECRET_HEX = Buffer.from(SECRET).toString("hex");

let dir: string;
let root: string;
let srv: InProcessServer;
const responses: Buffer[] = [];

function record(res: RawResponse): RawResponse {
  responses.push(res.raw);
  return res;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "um-serve-hostile-"));
  root = join(dir, "mirror");
  await writeFile(join(dir, "secret.txt"), SECRET);
  await mkdir(join(dir, "outside"), { recursive: true });
  await writeFile(join(dir, "outside", "inner.txt"), SECRET);
  await makeUpstream(root, {
    "public.txt": "public\n",
    "linked-later.txt": "replaced by a symlink after the server started\n",
    "linked-before.txt": "replaced by a symlink before the server started\n",
    "dir-before/inner.txt": "a folder swapped for a symlink before start\n",
    "dir-later/inner.txt": "a folder swapped for a symlink after start\n",
    "a/b/deep.txt": "deep\n",
  });
  // Links the mirror never listed, and listed entries turned into links to the secret.
  await symlink(join(dir, "secret.txt"), join(root, "unlisted-link.txt"));
  await symlink(join(dir, "outside"), join(root, "unlisted-dir"));
  await rm(join(root, "linked-before.txt"));
  await symlink(join(dir, "secret.txt"), join(root, "linked-before.txt"));
  await rm(join(root, "dir-before"), { recursive: true });
  await symlink(join(dir, "outside"), join(root, "dir-before"));
  await writeFile(join(dir, "outside", "inner.txt"), SECRET);
  srv = await serveInProcess(root, { headersTimeoutMs: 1500, requestTimeoutMs: 3000 });
  await rm(join(root, "linked-later.txt"));
  await symlink(join(dir, "secret.txt"), join(root, "linked-later.txt"));
  await rm(join(root, "dir-later"), { recursive: true });
  await symlink(join(dir, "outside"), join(root, "dir-later"));
});

afterAll(async () => {
  await srv?.close();
  await rm(dir, { recursive: true, force: true });
  // The one assertion that matters most, over every response of the file.
  for (const raw of responses) {
    expect(raw.includes(SECRET)).toBe(false);
    expect(raw.toString("hex").includes(SECRET_HEX)).toBe(false);
  }
});

describe("path traversal", () => {
  const targets = [
    "/../secret.txt",
    "/../../../../../../etc/passwd",
    "/a/../../secret.txt",
    "/a/b/../../../secret.txt",
    "/./secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/a/%2e%2e/%2e%2e/secret.txt",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/a%2f..%2f..%2fsecret.txt",
    "/..%5csecret.txt",
    "/..%5c..%5csecret.txt",
    "/..\\secret.txt",
    "/a\\..\\..\\secret.txt",
    "/%c0%ae%c0%ae/secret.txt",
    "/%c0%ae%c0%ae%c0%afsecret.txt",
    "/%e0%80%ae%e0%80%ae/secret.txt",
    "/%c1%9c..%c1%9csecret.txt",
    "/secret.txt%00.txt",
    "/public.txt%00/../secret.txt",
    "/%00",
    "//secret.txt",
    "///etc/passwd",
    "/.update-mirror/../../secret.txt",
    "/.update-mirror/private/../../../secret.txt",
    "/.update-mirror/by-hash/sha256/../../../../secret.txt",
    "http://127.0.0.1/../secret.txt",
    "http://127.0.0.1/%2e%2e/secret.txt",
    "/unlisted-link.txt",
    "/unlisted-dir/inner.txt",
    "/unlisted-dir/",
    "/%2ftmp%2fsecret.txt",
    "/%2fetc%2fpasswd",
    "/C:%5cWindows%5cwin.ini",
  ];

  it("answers every encoding with 400 or 404 and none of the bytes outside the mirror", async () => {
    for (const target of [...targets, `/${encodeURIComponent(join(dir, "secret.txt"))}`, `/${join(dir, "secret.txt")}`]) {
      const res = record(await rawGet(srv.port, target));
      expect([400, 404], target).toContain(res.status);
      expect(res.headers["x-content-type-options"] ?? "nosniff", target).toBe("nosniff");
    }
  });

  it("answers a raw NUL, control characters and a smuggling attempt with 400, and still serves afterwards", async () => {
    const raw = [
      "GET /public.txt\0/../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /a\x01b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /secret.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
      "GET /public.txt HTTP/1.1\r\nHost: x\r\nX-Bad\x00Header: 1\r\nConnection: close\r\n\r\n",
    ];
    for (const request of raw) {
      const res = record(await rawRequest(srv.port, request));
      expect([400, 404], JSON.stringify(request)).toContain(res.status);
    }
    const ok = record(await rawGet(srv.port, "/public.txt"));
    expect(ok.status).toBe(200);
    expect(ok.body.toString()).toBe("public\n");
  });
});

describe("symlinks", () => {
  it("never follows a link out of the mirror, whether it was there at start or appeared later", async () => {
    for (const path of ["/linked-before.txt", "/linked-later.txt", "/dir-before/inner.txt", "/dir-later/inner.txt"]) {
      const res = record(await rawGet(srv.port, path));
      // Listed, so not a 404; but no copy with the listed bytes exists, so nothing is sent.
      expect(res.status, path).toBe(503);
    }
    for (const path of ["/dir-before/", "/dir-later/?format=json", "/"]) {
      const res = record(await rawGet(srv.port, path));
      expect(res.status, path).toBe(200);
      expect(res.body.toString()).not.toContain("unlisted");
    }
    expect(record(await rawGet(srv.port, "/a/b/deep.txt")).status).toBe(200);
  });
});

describe("abusive clients", () => {
  it("answers oversized headers with 431 and keeps serving", async () => {
    const big = record(await rawRequest(srv.port, `GET /public.txt HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`));
    expect(big.status).toBe(431);
    const many = record(await rawRequest(srv.port, `GET /public.txt HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join("")}\r\n`));
    expect(many.status).toBe(431);
    expect((await http(`${srv.url}public.txt`)).status).toBe(200);
  });

  it("closes a connection that sends its headers too slowly, while others are served", async () => {
    const socket = connect(srv.port, "127.0.0.1");
    const started = Date.now();
    let received = "";
    socket.on("data", (d: Buffer) => {
      received += d.toString("latin1");
    });
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    const request = "GET /public.txt HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let at = 0;
    const drip = setInterval(() => {
      if (socket.destroyed) return;
      socket.write(request[at % request.length] ?? "a");
      at += 1;
    }, 200);
    // Meanwhile, others get answers promptly.
    expect((await http(`${srv.url}public.txt`)).status).toBe(200);
    await closed;
    clearInterval(drip);
    expect(Date.now() - started).toBeLessThan(6000);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(received).not.toContain("public\n");
  });

  it("stays responsive with thousands of idle connections open, and sheds them by the headers timeout", async () => {
    const idle: Socket[] = [];
    let closedByServer = 0;
    // In waves, as clients arrive: a single burst would overflow the kernel's accept queue, which is no test of the server.
    for (let wave = 0; wave < 6; wave += 1) {
      await new Promise<void>((resolve) => {
        let pending = 500;
        for (let i = 0; i < 500; i += 1) {
          const s = connect(srv.port, "127.0.0.1");
          s.on("error", () => undefined);
          s.resume();
          s.on("close", () => {
            closedByServer += 1;
          });
          s.on("connect", () => {
            pending -= 1;
            if (pending === 0) resolve();
          });
          idle.push(s);
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const during = Date.now();
    const res = await http(`${srv.url}public.txt`);
    expect(res.status).toBe(200);
    expect(Date.now() - during).toBeLessThan(5000);
    // Idle connections count against the headers timeout from when they were accepted, so they are closed without a request.
    const deadline = Date.now() + 20_000;
    while (closedByServer < 3000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
    const shed = closedByServer;
    for (const s of idle) s.destroy();
    expect(shed).toBe(3000);
    expect((await http(`${srv.url}public.txt`)).status).toBe(200);
  });

  it("drops connections beyond --max-connections and serves again once they are gone", async () => {
    const capped = await serveInProcess(root, { maxConnections: 50, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 });
    const idle: Socket[] = [];
    try {
      for (let i = 0; i < 200; i += 1) {
        const s = connect(capped.port, "127.0.0.1");
        s.on("error", () => undefined);
        idle.push(s);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      const refused = await http(`${capped.url}public.txt`).then(
        (r) => r.status,
        () => "dropped",
      );
      expect(refused).toBe("dropped");
      for (const s of idle) s.destroy();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect((await http(`${capped.url}public.txt`)).status).toBe(200);
      expect(capped.log.lines.some((l) => (l.obj as { event?: string }).event === "serve:connections-dropped")).toBe(true);
    } finally {
      for (const s of idle) s.destroy();
      await capped.close();
    }
  });
});
