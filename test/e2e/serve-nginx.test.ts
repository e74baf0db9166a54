// The real nginx with dist-templates/nginx-update-mirror.conf serves a mirror like `serve`: payload byte for byte, 404 below .update-mirror/private/, autoindex listings, retained objects by hash.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Manifest } from "../../src/core/manifest.js";
import { runCli, scratchDir } from "../support/cli.js";
import { findNginx, type RunningNginx, startNginx } from "../support/nginx.js";
import { makeUpstream } from "../servers/vendor-server.js";
import { http, sha256 } from "./serve-harness.js";

const nginx = findNginx();
if (!nginx) console.warn("skipping the nginx template test: nginx is not installed (apt-get install nginx-light; .ci/run installs it)");

const OLD_DAILY = randomBytes(50 * 1024 + 1);
const TREE: Record<string, Buffer> = {
  "bases/daily.cvd": randomBytes(300 * 1024 + 7),
  "bases/nested/deeper/leaf.bin": randomBytes(10 * 1024),
  "docs/read me (1).txt": Buffer.from("a name with spaces\n"),
  ["ünïcödé/日本語 ñ.txt".normalize("NFC")]: Buffer.from("non-ascii name\n"),
  "top.txt": Buffer.from("top level\n"),
  "empty.dat": Buffer.alloc(0),
};

function encode(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

let scratch: { dir: string; cleanup: () => Promise<void> };
let mirror: string;
let server: RunningNginx | undefined;

beforeAll(async () => {
  scratch = await scratchDir("serve-nginx");
  const up = join(scratch.dir, "up");
  mirror = join(scratch.dir, "mirror");
  if (!nginx) return;
  // Two real syncs: the first daily.cvd is replaced and kept as a retained object.
  await makeUpstream(up, { ...TREE, "bases/daily.cvd": OLD_DAILY });
  for (let i = 0; i < 2; i++) {
    if (i === 1) await makeUpstream(up, TREE);
    const r = await runCli(["sync", "--source", up, "--dest", mirror]);
    if (r.code !== 0) throw new Error(`sync failed (${r.code}): ${r.stderr}`);
  }
  server = await startNginx(nginx, mirror);
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await scratch?.cleanup();
});

describe.skipIf(!nginx)("nginx with dist-templates/nginx-update-mirror.conf", () => {
  it("serves every payload file byte for byte, with nosniff, and the public metadata", async () => {
    const url = server?.url as string;
    for (const [path, content] of Object.entries(TREE)) {
      const res = await http(`${url}${encode(path)}`);
      expect(res.status, path).toBe(200);
      expect(res.body.equals(content), path).toBe(true);
      expect(res.headers["x-content-type-options"], path).toBe("nosniff");
      expect(res.headers.etag, path).toBeDefined();
    }
    const manifest = await http(`${url}.update-mirror/manifest.json`);
    expect(manifest.status).toBe(200);
    expect(manifest.headers["content-type"]).toBe("application/json");
    expect(manifest.body.equals(await readFile(join(mirror, ".update-mirror", "manifest.json")))).toBe(true);
    const files = (JSON.parse(manifest.body.toString("utf8")) as Manifest).files;
    expect(files.map((f) => f.path).sort()).toEqual(Object.keys(TREE).sort());
    const sums = await http(`${url}.update-mirror/SHA256SUMS`);
    expect(sums.status).toBe(200);
    expect(sums.headers["content-type"]).toMatch(/^text\/plain/);
    expect(sums.body.equals(await readFile(join(mirror, ".update-mirror", "SHA256SUMS")))).toBe(true);
    // Conditional requests work with nginx's own ETag.
    const again = await http(`${url}top.txt`, { headers: { "if-none-match": String((await http(`${url}top.txt`)).headers.etag) } });
    expect(again.status).toBe(304);
  });

  it("answers 404 (never 403) for the private folder and everything else below .update-mirror/", async () => {
    const url = server?.url as string;
    const objects = join(mirror, ".update-mirror", "private", "objects");
    const hex = sha256(OLD_DAILY);
    expect(existsSync(join(mirror, ".update-mirror", "private", "state.json"))).toBe(true);
    expect(existsSync(join(objects, hex.slice(0, 2), hex))).toBe(true);
    for (const target of [
      ".update-mirror/private/state.json",
      `.update-mirror/private/objects/${hex.slice(0, 2)}/${hex}`,
      ".update-mirror/private/manifests/1.json",
      ".update-mirror/private/",
      ".update-mirror/private",
      ".update-mirror/",
      ".update-mirror/other",
      ".update-mirror/by-hash/sha256/",
      `.update-mirror/by-hash/sha256/../../private/objects/${hex.slice(0, 2)}/${hex}`,
      `.update-mirror/by-hash/sha256/%2e%2e/%2e%2e/private/state.json`,
      `.update-mirror/%70rivate/state.json`,
    ]) {
      const res = await http(`${url}${target}`);
      expect(res.status, target).toBe(404);
      expect(res.body.includes(Buffer.from('"version"')), target).toBe(false);
      expect(res.headers["x-content-type-options"], target).toBe("nosniff");
    }
  });

  it("lists folders in autoindex format, without .update-mirror/", async () => {
    const url = server?.url as string;
    const root = await http(url);
    expect(root.status).toBe(200);
    expect(root.headers["content-type"]).toMatch(/^text\/html/);
    const html = root.body.toString("utf8");
    for (const name of ["bases/", "docs/", "top.txt", "empty.dat"]) expect(html).toContain(`<a href="${encode(name).replace(/%2F$/, "/")}">`);
    expect(html).not.toContain(".update-mirror");
    const docs = (await http(`${url}docs/`)).body.toString("utf8");
    expect(docs).toMatch(/<a href="read%20me%20%281%29\.txt">read me \(1\)\.txt<\/a>/);
    const nested = await http(`${url}bases/nested/`);
    expect(nested.status).toBe(200);
    expect(nested.body.toString("utf8")).toContain('<a href="deeper/">deeper/</a>');
  });

  it("serves a retained object by hash, and 404 for hashes it has no object for", async () => {
    const url = server?.url as string;
    const hex = sha256(OLD_DAILY);
    const res = await http(`${url}.update-mirror/by-hash/sha256/${hex}`);
    expect(res.status).toBe(200);
    expect(res.body.equals(OLD_DAILY)).toBe(true);
    expect(res.headers["content-type"]).toBe("application/octet-stream");
    expect(res.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    const range = await http(`${url}.update-mirror/by-hash/sha256/${hex}`, { headers: { range: "bytes=10-19" } });
    expect(range.status).toBe(206);
    expect(range.body.equals(OLD_DAILY.subarray(10, 20))).toBe(true);
    // Uppercase digits and other algorithms are not routes; a current file never replaced has no
    // object, which nginx cannot know about (the documented limit: the client fetches it by path).
    for (const target of [`sha256/${hex.toUpperCase()}`, `sha256/${hex}x`, `sha512/${hex}`, `sha256/${sha256(TREE["top.txt"] as Buffer)}`]) {
      const miss = await http(`${url}.update-mirror/by-hash/${target}`);
      expect(miss.status, target).toBe(404);
      expect(miss.headers["cache-control"], target).toBeUndefined();
    }
  });
});
