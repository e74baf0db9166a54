// `sync` from HTTP servers that publish only directory listings: every common style, real nginx, no-op runs that download nothing, and hostile links ignored.
import { createServer, type Server } from "node:http";
import { readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { verifyTree } from "../../src/mirror/verify-tree.js";
import { runCli, scratchDir, writeTree } from "../support/cli.js";
import { findNginx, startNginx } from "../support/nginx.js";
import { LISTING_STYLES } from "../servers/listing-styles.js";
import { startVendorServer, type VendorServer } from "../servers/vendor-server.js";

const TREE: Record<string, string | Buffer> = {
  "readme.txt": "hello\n",
  "bases/daily.cvd": Buffer.alloc(5000, 1),
  "bases/main 2026 (full).cvd": Buffer.alloc(70_000, 2),
  "odd/100% sure#1.txt": "percent and hash\n",
  "odd/a&b;c=d.txt": "reserved\n",
  "ünïcödé/日本語.txt": "non-ascii\n",
  "deep/a/b/c/d.txt": "deep\n",
  "empty.dat": "",
};

let dir: string;
let cleanup: () => Promise<void>;
let server: VendorServer | undefined;

beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("listing"));
  await writeTree(join(dir, "up"), TREE);
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await cleanup();
});

async function expectMirrorOf(mirror: string, tree: Record<string, string | Buffer>): Promise<void> {
  expect(await verifyTree(mirror)).toMatchObject({ ok: true, checkedFiles: Object.keys(tree).length });
  for (const [path, content] of Object.entries(tree)) expect(await readFile(join(mirror, path)), path).toEqual(Buffer.from(content));
}

describe.each(LISTING_STYLES)("a %s-style listing", (style) => {
  it("is crawled into a verified mirror; a no-op run downloads nothing; a change is picked up", async () => {
    server = await startVendorServer(join(dir, "up"), { listing: style });
    const mirror = join(dir, "mirror");
    const first = await runCli(["sync", "--source", server.url, "--dest", mirror]);
    expect(first.code, first.stderr).toBe(0);
    await expectMirrorOf(mirror, TREE);

    server.requests.length = 0;
    const noop = await runCli(["sync", "--source", server.url, "--dest", mirror]);
    expect(noop.code, noop.stderr).toBe(0);
    expect(noop.stdout).toMatch(/0 added, 0 updated, 0 removed|up to date/);
    const downloads = server.requests.filter((r) => r.method === "GET" && !r.path.endsWith("/") && r.path !== "" && !r.path.startsWith(".update-mirror/"));
    expect(downloads).toEqual([]);

    // Same size, new bytes, a later mtime: the listing (or HEAD) shows the change.
    await writeFile(join(dir, "up", "bases/daily.cvd"), Buffer.alloc(5000, 9));
    const later = new Date(Date.now() + 3 * 60_000);
    await utimes(join(dir, "up", "bases/daily.cvd"), later, later);
    const changed = await runCli(["sync", "--source", server.url, "--dest", mirror]);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stdout).toMatch(/0 added, 1 updated, 0 removed/);
    await expectMirrorOf(mirror, { ...TREE, "bases/daily.cvd": Buffer.alloc(5000, 9) });
  });
});

describe("a listing served by real nginx (the shipped site config, autoindex on)", () => {
  const nginx = findNginx();
  if (!nginx) {
    it.skip("needs nginx (apt-get install nginx-light; .ci/run installs it)", () => undefined);
    return;
  }
  it("is crawled into a verified mirror", async () => {
    const running = await startNginx(nginx, join(dir, "up"));
    try {
      const mirror = join(dir, "mirror");
      const r = await runCli(["sync", "--source", running.url, "--dest", mirror]);
      expect(r.code, r.stderr).toBe(0);
      await expectMirrorOf(mirror, TREE);
    } finally {
      await running.stop();
    }
  });
});

describe("a hostile listing", () => {
  let hostile: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => hostile?.close(resolve));
    hostile = undefined;
  });

  it("has its links to other hosts, parents, queries, fragments and unsafe names ignored", async () => {
    const page = `<html><body><pre>
<a href="../">../</a>
<a href="gone.txt">gone.txt</a>
<a href="http://evil.example/payload.bin">payload.bin</a>
<a href="//evil.example/x.bin">x.bin</a>
<a href="/etc/passwd">passwd</a>
<a href="../../secret.txt">secret.txt</a>
<a href="%2e%2e/escape.txt">escape.txt</a>
<a href="a%2fb.txt">a%2fb.txt</a>
<a href="?C=N;O=D">Name</a>
<a href="#top">top</a>
<a href="con%00.txt">nul</a>
<a href=".update-mirror/">.update-mirror/</a>
<a href="good.txt">good.txt</a>                                         28-Nov-2026 10:00                   5
</pre></body></html>`;
    const served: string[] = [];
    hostile = createServer((req, res) => {
      served.push(req.url ?? "");
      if (req.url === "/pub/") {
        res.writeHead(200, { "content-type": "text/html" }).end(page);
      } else if (req.url === "/pub/good.txt") {
        res.writeHead(200, { "content-type": "text/plain", "content-length": 5 }).end(req.method === "HEAD" ? undefined : "good\n");
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => hostile?.listen(0, "127.0.0.1", resolve));
    const { port } = hostile.address() as { port: number };
    const mirror = join(dir, "mirror");
    const r = await runCli(["sync", "--source", `http://127.0.0.1:${port}/pub/`, "--dest", mirror]);
    expect(r.code, r.stderr).toBe(0);
    await expectMirrorOf(mirror, { "good.txt": "good\n" });
    // Only the page, the manifest probe, the listed files (gone.txt is a dead link: skipped) were asked for.
    expect(new Set(served)).toEqual(new Set(["/pub/.update-mirror/manifest.json", "/pub/", "/pub/gone.txt", "/pub/good.txt"]));
  });
});
