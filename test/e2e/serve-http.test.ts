// `serve` speaking HTTP: GET/HEAD, ranges, 416, multi-range, If-Range, 304/412, listings, metadata, by-hash, health, metrics, auth, allow-list, TLS, swaps.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { retainedLayout } from "../../src/mirror/retained.js";
import { Agent as HttpAgent, get as httpGet } from "node:http";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllowList } from "../../src/serve/allow-list.js";
import { createAuthenticator, hashPassword, parseAuthFile } from "../../src/serve/auth.js";
import { hasCommand, writeTree } from "../support/cli.js";
import { makeKeyPair, makeUpstream } from "../servers/vendor-server.js";
import { http, type InProcessServer, rawGet, serveInProcess, sha256 } from "./serve-harness.js";

const TREE: Record<string, Buffer> = {
  "kes/bases/daily.cvd": randomBytes(200 * 1024),
  "kes/bases/small.txt": Buffer.from("small file\n"),
  "docs/read me #1 (100%).txt": Buffer.from("awkward name\n"),
  "ünïcödé/日本語.txt": Buffer.from("non-ascii\n"),
  "docs/a&b's [x].html": Buffer.from("<script>alert(1)</script>\n"),
  "empty.dat": Buffer.alloc(0),
  "huge.bin": randomBytes(3 * 1024 * 1024 + 5),
};
const BIG = "kes/bases/daily.cvd";

function encode(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

let dir: string;
let root: string;
let srv: InProcessServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "um-serve-http-"));
  root = join(dir, "mirror");
  const { secretKey } = await makeKeyPair(join(dir, "key"));
  // Files an hour old: a Last-Modified within the last second is too weak for If-Range.
  await writeTree(root, TREE);
  const hourAgo = new Date(Date.now() - 3_600_000);
  for (const path of Object.keys(TREE)) await utimes(join(root, path), hourAgo, hourAgo);
  await makeUpstream(root, {}, { signingKey: secretKey });
  srv = await serveInProcess(root);
});
afterAll(async () => {
  await srv?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("files", () => {
  it("GET serves every listed file byte for byte with validators, length, type and nosniff", async () => {
    for (const [path, content] of Object.entries(TREE)) {
      const res = await http(`${srv.url}${encode(path)}`);
      expect(res.status, path).toBe(200);
      expect(res.body.equals(content), path).toBe(true);
      expect(res.headers.etag).toBe(`"sha256-${sha256(content)}"`);
      expect(res.headers["content-length"]).toBe(String(content.length));
      expect(res.headers["last-modified"]).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
      expect(res.headers["x-content-type-options"]).toBe("nosniff");
      expect(res.headers["accept-ranges"]).toBe("bytes");
    }
    expect((await http(`${srv.url}kes/bases/small.txt`)).headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect((await http(`${srv.url}${encode(BIG)}`)).headers["content-type"]).toBe("application/octet-stream");
  });

  it("HEAD sends the same headers and no body", async () => {
    for (const path of [BIG, "kes/bases/small.txt", "empty.dat"]) {
      const get = await http(`${srv.url}${encode(path)}`);
      const head = await http(`${srv.url}${encode(path)}`, { method: "HEAD" });
      expect(head.status).toBe(200);
      expect(head.body.length).toBe(0);
      const { date: _d1, ...getHeaders } = get.headers;
      const { date: _d2, ...headHeaders } = head.headers;
      expect(headHeaders).toEqual(getHeaders);
    }
  });

  it("keeps connections alive across requests", async () => {
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    try {
      const reused: boolean[] = [];
      for (let i = 0; i < 5; i += 1) {
        await new Promise<void>((resolve, reject) => {
          const req = httpGet(`${srv.url}kes/bases/small.txt`, { agent }, (res) => {
            expect(res.headers.connection).toBe("keep-alive");
            expect(res.headers["keep-alive"]).toBe("timeout=15");
            res.resume();
            res.on("end", () => resolve());
          });
          req.on("error", reject);
          reused.push(req.reusedSocket);
        });
      }
      expect(reused).toEqual([false, true, true, true, true]);
    } finally {
      agent.destroy();
    }
  });

  it("answers single ranges with 206 and Content-Range, suffix and open ranges too", async () => {
    const content = TREE[BIG] as Buffer;
    const cases: [string, number, number][] = [
      ["bytes=0-511", 0, 511],
      ["bytes=1000-", 1000, content.length - 1],
      ["bytes=-100", content.length - 100, content.length - 1],
      ["bytes=5-999999999", 5, content.length - 1],
      ["bytes=204799-204799", 204799, 204799],
    ];
    for (const [range, start, end] of cases) {
      const res = await http(`${srv.url}${encode(BIG)}`, { headers: { range } });
      expect(res.status, range).toBe(206);
      expect(res.headers["content-range"]).toBe(`bytes ${start}-${end}/${content.length}`);
      expect(res.headers["content-length"]).toBe(String(end - start + 1));
      expect(res.body.equals(content.subarray(start, end + 1)), range).toBe(true);
    }
    const small = await http(`${srv.url}kes/bases/small.txt`, { headers: { range: "bytes=6-" } });
    expect(small.status).toBe(206);
    expect(small.body.toString()).toBe("file\n");
  });

  it("answers 416 with bytes */size when no range is satisfiable, and ignores malformed ranges", async () => {
    const size = (TREE[BIG] as Buffer).length;
    for (const range of [`bytes=${size}-`, "bytes=-0", `bytes=${size + 10}-${size + 20}`]) {
      const res = await http(`${srv.url}${encode(BIG)}`, { headers: { range } });
      expect(res.status, range).toBe(416);
      expect(res.headers["content-range"]).toBe(`bytes */${size}`);
      expect(res.headers["content-length"]).toBe("0");
    }
    const empty = await http(`${srv.url}empty.dat`, { headers: { range: "bytes=0-" } });
    expect(empty.status).toBe(416);
    expect(empty.headers["content-range"]).toBe("bytes */0");
    for (const range of ["bytes=10-5", "lines=1-2", "bytes=abc"]) {
      const res = await http(`${srv.url}${encode(BIG)}`, { headers: { range } });
      expect(res.status, range).toBe(200);
      expect(res.body.length).toBe(size);
    }
  });

  it("answers multi-range requests with the whole file (200)", async () => {
    const content = TREE[BIG] as Buffer;
    const res = await http(`${srv.url}${encode(BIG)}`, { headers: { range: "bytes=0-9,100-199" } });
    expect(res.status).toBe(200);
    expect(res.headers["content-range"]).toBeUndefined();
    expect(res.body.equals(content)).toBe(true);
  });

  it("honours If-Range with the ETag or the exact Last-Modified, and sends everything otherwise", async () => {
    const content = TREE[BIG] as Buffer;
    const first = await http(`${srv.url}${encode(BIG)}`, { method: "HEAD" });
    const etag = String(first.headers.etag);
    const lastModified = String(first.headers["last-modified"]);
    const ranged = (ifRange: string) => http(`${srv.url}${encode(BIG)}`, { headers: { range: "bytes=100-", "if-range": ifRange } });
    expect((await ranged(etag)).status).toBe(206);
    expect((await ranged(etag)).body.equals(content.subarray(100))).toBe(true);
    expect((await ranged(lastModified)).status).toBe(206);
    for (const stale of ['"sha256-0000"', `W/${etag}`, new Date(Date.parse(lastModified) - 5000).toUTCString()]) {
      const res = await ranged(stale);
      expect(res.status, stale).toBe(200);
      expect(res.body.equals(content), stale).toBe(true);
    }
  });

  it("answers 304 to If-None-Match and If-Modified-Since, 412 to a failed If-Match", async () => {
    const url = `${srv.url}kes/bases/small.txt`;
    const first = await http(url);
    const etag = String(first.headers.etag);
    const notModified = await http(url, { headers: { "if-none-match": etag } });
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
    expect(notModified.headers.etag).toBe(etag);
    expect((await http(url, { headers: { "if-none-match": `"x", ${etag}` } })).status).toBe(304);
    expect((await http(url, { headers: { "if-none-match": '"sha256-other"' } })).status).toBe(200);
    expect((await http(url, { headers: { "if-modified-since": String(first.headers["last-modified"]) } })).status).toBe(304);
    expect((await http(url, { headers: { "if-modified-since": "Thu, 01 Jan 1970 00:00:00 GMT" } })).status).toBe(200);
    expect((await http(url, { headers: { "if-match": '"sha256-other"' } })).status).toBe(412);
    expect((await http(url, { headers: { "if-match": etag } })).status).toBe(200);
    // Preconditions come before ranges: a matching If-None-Match wins over Range.
    expect((await http(url, { headers: { "if-none-match": etag, range: "bytes=0-1" } })).status).toBe(304);
  });

  it("answers 404 (never 403) for anything not listed, and 405 with Allow for other methods", async () => {
    for (const path of ["missing.txt", "kes/bases/missing.cvd", "kes/bases/small.txt/", "KES/bases/small.txt", ".update-mirror/private/state.json", ".update-mirror/private/", ".update-mirror/", ".update-mirror", ".update-mirror/private/objects", ".update-mirror/by-hash/sha256/"]) {
      const res = await http(`${srv.url}${encode(path)}${path.endsWith("/") ? "" : ""}`);
      expect(res.status, path).toBe(404);
    }
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"]) {
      const res = await http(`${srv.url}kes/bases/small.txt`, { method });
      expect(res.status, method).toBe(405);
      expect(res.headers.allow).toBe("GET, HEAD");
    }
  });
});

describe("metadata and by-hash", () => {
  it("serves manifest.json, its signature and SHA256SUMS exactly as committed", async () => {
    for (const name of ["manifest.json", "manifest.json.minisig", "SHA256SUMS"]) {
      const res = await http(`${srv.url}.update-mirror/${name}`);
      expect(res.status, name).toBe(200);
      expect(res.body.equals(await readFile(join(root, ".update-mirror", name))), name).toBe(true);
      expect(res.headers.etag).toBe(`"sha256-${sha256(res.body)}"`);
      expect(res.headers["cache-control"]).toBe("no-cache");
    }
    expect((await http(`${srv.url}.update-mirror/manifest.json`)).headers["content-type"]).toBe("application/json");
  });

  it("serves any listed content by its SHA-256, immutable, and nothing else", async () => {
    for (const content of Object.values(TREE)) {
      const res = await http(`${srv.url}.update-mirror/by-hash/sha256/${sha256(content)}`);
      expect(res.status).toBe(200);
      expect(res.body.equals(content)).toBe(true);
      expect(res.headers.etag).toBe(`"sha256-${sha256(content)}"`);
      expect(res.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    }
    const ranged = await http(`${srv.url}.update-mirror/by-hash/sha256/${sha256(TREE[BIG] as Buffer)}`, { headers: { range: "bytes=10-19" } });
    expect(ranged.status).toBe(206);
    expect(ranged.body.equals((TREE[BIG] as Buffer).subarray(10, 20))).toBe(true);
    // An object lying in staging that no manifest lists is never served, even by its own hash.
    const stray = Buffer.from("staged but never published\n");
    const strayObject = retainedLayout(root).object(sha256(stray));
    await mkdir(dirname(strayObject), { recursive: true });
    await writeFile(strayObject, stray);
    expect((await http(`${srv.url}.update-mirror/by-hash/sha256/${sha256(stray)}`)).status).toBe(404);
    expect((await http(`${srv.url}.update-mirror/by-hash/sha256/${sha256(TREE[BIG] as Buffer).toUpperCase()}`)).status).toBe(404);
    expect((await http(`${srv.url}.update-mirror/by-hash/sha256/abc`)).status).toBe(404);
    expect((await http(`${srv.url}.update-mirror/by-hash/md5/${sha256(TREE[BIG] as Buffer)}`)).status).toBe(404);
  });
});

describe("listings", () => {
  it("lists folders nginx-style with escaped names and relative, encoded links", async () => {
    const top = await http(srv.url);
    expect(top.status).toBe(200);
    expect(top.headers["content-type"]).toBe("text/html; charset=utf-8");
    const html = top.body.toString("utf8");
    expect(html).toContain("<title>Index of /</title>");
    expect(html).toMatch(/<a href="kes\/">kes\/<\/a> +\d{2}-\w{3}-\d{4} \d{2}:\d{2} +-\r\n/);
    expect(html).toMatch(new RegExp(`<a href="huge.bin">huge.bin</a> +\\d{2}-\\w{3}-\\d{4} \\d{2}:\\d{2} +${(TREE["huge.bin"] as Buffer).length}\\r\\n`));
    expect(html).not.toContain(".update-mirror");
    const docs = (await http(`${srv.url}docs/`)).body.toString("utf8");
    expect(docs).toContain('<a href="../">../</a>');
    expect(docs).toContain(`<a href="a%26b's%20%5Bx%5D.html">a&amp;b&#39;s [x].html</a>`);
    expect(docs).toContain(`<a href="read%20me%20%231%20(100%25).txt">read me #1 (100%).txt</a>`);
    expect(docs).not.toContain("<script>");
    // Every link in a listing leads somewhere that answers 200 (what wget -m and lftp rely on).
    for (const match of docs.matchAll(/<a href="([^"]+)">/g)) {
      const href = match[1] as string;
      if (href === "../") continue;
      expect((await http(new URL(href, `${srv.url}docs/`).href)).status, href).toBe(200);
    }
  });

  it("lists as JSON with ?format=json, redirects a folder without its slash, and 404s what is not a folder", async () => {
    const res = await http(`${srv.url}kes/bases/?format=json`);
    expect(res.headers["content-type"]).toBe("application/json");
    const rows = JSON.parse(res.body.toString("utf8")) as { name: string; type: string; size?: number; sha256?: string; mtime: string }[];
    expect(rows.map((r) => [r.name, r.type, r.size, r.sha256])).toEqual([
      ["daily.cvd", "file", (TREE[BIG] as Buffer).length, sha256(TREE[BIG] as Buffer)],
      ["small.txt", "file", 11, sha256(TREE["kes/bases/small.txt"] as Buffer)],
    ]);
    expect(Number.isFinite(Date.parse(rows[0]?.mtime ?? ""))).toBe(true);
    const top = JSON.parse((await http(`${srv.url}?format=json`)).body.toString("utf8")) as { name: string; type: string }[];
    expect(top.filter((r) => r.type === "directory").map((r) => r.name)).toEqual(["docs", "kes", "ünïcödé"]);
    const moved = await http(`${srv.url}kes/bases?format=json`);
    expect(moved.status).toBe(301);
    expect(moved.headers.location).toBe("/kes/bases/?format=json");
    const unicode = await http(`${srv.url}${encodeURIComponent("ünïcödé")}`);
    expect(unicode.headers.location).toBe(`/${encodeURIComponent("ünïcödé")}/`);
    expect((await http(`${srv.url}nothing/`)).status).toBe(404);
  });

  it("answers 404 for folders with --no-listing, while files are still served", async () => {
    const quiet = await serveInProcess(root, { listing: false });
    try {
      for (const path of ["", "kes/", "kes", "kes/bases/?format=json"]) expect((await http(`${quiet.url}${path}`)).status, path).toBe(404);
      expect((await http(`${quiet.url}kes/bases/small.txt`)).status).toBe(200);
    } finally {
      await quiet.close();
    }
  });
});

describe("operations", () => {
  it("logs one access record per request: client, method, path, status, bytes, duration", async () => {
    srv.access.length = 0;
    await http(`${srv.url}kes/bases/small.txt`);
    await http(`${srv.url}${encode(BIG)}`, { headers: { range: "bytes=0-99" } });
    await http(`${srv.url}missing`);
    await rawGet(srv.port, "/../etc/passwd");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(srv.access.map((r) => [r.client, r.method, r.path, r.status, r.bytes])).toEqual([
      ["127.0.0.1", "GET", "/kes/bases/small.txt", 200, 11],
      ["127.0.0.1", "GET", `/${encode(BIG)}`, 206, 100],
      ["127.0.0.1", "GET", "/missing", 404, "404 Not Found\n".length],
      ["127.0.0.1", "GET", "/../etc/passwd", 400, expect.any(Number)],
    ]);
    for (const r of srv.access) expect(r.ms).toBeGreaterThanOrEqual(0);
  });

  it("reports health as JSON: 200 while fresh, 503 past --max-age", async () => {
    const ok = await http(`${srv.url}.update-mirror/healthz`);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body.toString())).toMatchObject({ status: "ok", version: 1 });
    const strict = await serveInProcess(root, { maxAgeMs: 1 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const stale = await http(`${strict.url}.update-mirror/healthz`);
      expect(stale.status).toBe(503);
      expect(JSON.parse(stale.body.toString())).toMatchObject({ status: "unhealthy", version: 1, reason: expect.stringMatching(/old/) });
    } finally {
      await strict.close();
    }
  });

  it("exposes Prometheus metrics: manifest version, age, files, bytes, requests and bytes by status", async () => {
    await http(`${srv.url}kes/bases/small.txt`);
    await http(`${srv.url}missing`);
    const res = await http(`${srv.url}.update-mirror/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = res.body.toString();
    const total = Object.values(TREE).reduce((n, c) => n + c.length, 0);
    expect(text).toMatch(/^update_mirror_manifest_version 1$/m);
    expect(text).toMatch(/^update_mirror_manifest_age_seconds \d+$/m);
    expect(text).toMatch(new RegExp(`^update_mirror_manifest_files ${Object.keys(TREE).length}$`, "m"));
    expect(text).toMatch(new RegExp(`^update_mirror_manifest_bytes ${total}$`, "m"));
    expect(text).toMatch(/^update_mirror_http_requests_total\{code="200"\} \d+$/m);
    expect(text).toMatch(/^update_mirror_http_requests_total\{code="404"\} \d+$/m);
    expect(text).toMatch(/^update_mirror_http_response_bytes_total\{code="200"\} \d+$/m);
    expect(text).toMatch(/^# TYPE update_mirror_http_requests_total counter$/m);
  });
});

describe("security options", () => {
  it("requires Basic credentials from the auth file, but not for healthz, and never logs the password", async () => {
    const password = "correct horse battery staple";
    const users = parseAuthFile(`alice:${await hashPassword(password, { N: 1024, r: 8, p: 1 })}\n`, "users");
    const guarded = await serveInProcess(root, { auth: createAuthenticator(users) });
    try {
      const denied = await http(`${guarded.url}kes/bases/small.txt`);
      expect(denied.status).toBe(401);
      expect(denied.headers["www-authenticate"]).toBe('Basic realm="update-mirror", charset="UTF-8"');
      const wrong = await http(`${guarded.url}kes/bases/small.txt`, { headers: { authorization: `Basic ${Buffer.from("alice:nope").toString("base64")}` } });
      expect(wrong.status).toBe(401);
      const ok = await http(`${guarded.url}kes/bases/small.txt`, { headers: { authorization: `Basic ${Buffer.from(`alice:${password}`).toString("base64")}` } });
      expect(ok.status).toBe(200);
      expect(ok.body.toString()).toBe("small file\n");
      expect((await http(`${guarded.url}.update-mirror/healthz`)).status).toBe(200);
      expect((await http(`${guarded.url}.update-mirror/metrics`)).status).toBe(401);
      expect(guarded.access.find((r) => r.status === 200 && r.path === "/kes/bases/small.txt")?.user).toBe("alice");
      const logged = JSON.stringify([guarded.access, guarded.log.lines]);
      expect(logged).not.toContain(password);
      expect(logged).not.toContain(Buffer.from(`alice:${password}`).toString("base64"));
    } finally {
      await guarded.close();
    }
  });

  it("answers 403 to clients outside the allow-list, IPv4-mapped addresses included", async () => {
    const closed = await serveInProcess(root, { allow: parseAllowList(["10.0.0.0/8", "fd00::/8"]) });
    const open = await serveInProcess(root, { allow: parseAllowList(["127.0.0.0/8"]) });
    const mapped = await serveInProcess(root, { host: "::", allow: parseAllowList(["::ffff:127.0.0.1/128"]) });
    try {
      expect((await http(`${closed.url}kes/bases/small.txt`)).status).toBe(403);
      expect((await http(`${open.url}kes/bases/small.txt`)).status).toBe(200);
      // On a dual-stack socket an IPv4 client shows as ::ffff:127.0.0.1.
      const viaV4 = await http(`http://127.0.0.1:${mapped.port}/kes/bases/small.txt`);
      expect(viaV4.status).toBe(200);
      expect(mapped.access.at(-1)?.client).toBe("::ffff:127.0.0.1");
    } finally {
      await Promise.all([closed.close(), open.close(), mapped.close()]);
    }
  });

  const hasOpenssl = hasCommand("openssl");
  if (!hasOpenssl) console.warn("skipping the TLS test: openssl is not installed (apt-get install openssl)");
  it.skipIf(!hasOpenssl)("serves HTTPS with the given certificate and key", async () => {
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
    const tls = await serveInProcess(root, { tls: { cert: await readFile(cert), key: await readFile(key) } });
    const agent = new Agent({ connect: { ca: await readFile(cert, "utf8") } });
    try {
      expect(tls.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
      const res = await request(`${tls.url}${encode(BIG)}`, { dispatcher: agent, headers: { range: "bytes=0-511" } });
      expect(res.statusCode).toBe(206);
      expect(Buffer.from(await res.body.arrayBuffer()).equals((TREE[BIG] as Buffer).subarray(0, 512))).toBe(true);
      await expect(fetch(`${tls.url}kes/bases/small.txt`)).rejects.toThrow();
    } finally {
      await agent.close();
      await tls.close();
    }
  });
});

describe("new commits", () => {
  it("switches to a new manifest without a restart, with no request for a listed file failing meanwhile", async () => {
    const swapDir = await mkdtemp(join(tmpdir(), "um-serve-swap-index-"));
    const mirror = join(swapDir, "mirror");
    await makeUpstream(mirror, { "stable.txt": "stays\n", "changing.txt": "version 1\n" });
    const live = await serveInProcess(mirror, { pollMs: 100 });
    try {
      const statuses: number[] = [];
      let running = true;
      const poller = (async () => {
        while (running) {
          const res = await http(`${live.url}stable.txt`);
          statuses.push(res.status);
          expect(res.body.toString()).toBe("stays\n");
        }
      })();
      for (let v = 2; v <= 4; v += 1) await makeUpstream(mirror, { "changing.txt": `version ${v}\n` });
      const deadline = Date.now() + 5000;
      while ((await http(`${live.url}changing.txt`)).body.toString() !== "version 4\n" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      running = false;
      await poller;
      expect((await http(`${live.url}changing.txt`)).body.toString()).toBe("version 4\n");
      expect(JSON.parse((await http(`${live.url}.update-mirror/manifest.json`)).body.toString()).version).toBe(4);
      expect(statuses.length).toBeGreaterThan(0);
      expect(statuses.every((s) => s === 200)).toBe(true);
    } finally {
      await live.close();
      await rm(swapDir, { recursive: true, force: true });
    }
  });
});
