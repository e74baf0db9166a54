// `serve` while `sync` commits new generations: a client that read manifest N finishes through by-hash, and no response ever carries bytes that disagree with its ETag.
import { randomBytes } from "node:crypto";
import { link, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { retainedLayout } from "../../src/mirror/retained.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Manifest } from "../../src/core/manifest.js";
import { runCli } from "../support/cli.js";
import { makeUpstream } from "../servers/vendor-server.js";
import { http, type InProcessServer, serveInProcess, sha256 } from "./serve-harness.js";

const BIG = "db/main.cvd";
const MiB = 1024 * 1024;

let dir: string;
let up: string;
let mirror: string;
let srv: InProcessServer | undefined;

async function sync(): Promise<void> {
  const r = await runCli(["sync", "--source", up, "--dest", mirror, "--keep-generations", "2", "--max-delete", "100%"]);
  if (r.code !== 0) throw new Error(`sync failed (${r.code}): ${r.stderr}`);
}

async function servedManifest(url: string): Promise<Manifest> {
  return JSON.parse((await http(`${url}.update-mirror/manifest.json`)).body.toString("utf8")) as Manifest;
}

async function waitForVersion(url: string, version: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await servedManifest(url)).version < version) {
    if (Date.now() > deadline) throw new Error(`the server did not switch to version ${version}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "um-serve-swap-"));
  up = join(dir, "up");
  mirror = join(dir, "mirror");
});
afterEach(async () => {
  await srv?.close();
  srv = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe("serve during sync", () => {
  it("lets a client that read manifest N finish through by-hash after N+1 is committed", async () => {
    const oldBig = randomBytes(4 * MiB + 3);
    const removed = Buffer.from("removed in the next generation\n");
    await makeUpstream(up, { [BIG]: oldBig, "db/gone.txt": removed, "stable.txt": "stable\n" });
    await sync();
    srv = await serveInProcess(mirror, { pollMs: 100 });

    // The client reads manifest N and starts on the big file by its hash.
    const n = await servedManifest(srv.url);
    const entry = n.files.find((f) => f.path === BIG);
    expect(entry?.sha256).toBe(sha256(oldBig));
    const byHash = `${srv.url}.update-mirror/by-hash/sha256/${entry?.sha256}`;
    const first = await http(byHash, { headers: { range: `bytes=0-${MiB - 1}` } });
    expect(first.status).toBe(206);

    // Meanwhile the mirror moves on: the big file changes and another one goes away.
    const newBig = randomBytes(4 * MiB + 3);
    await makeUpstream(up, { [BIG]: newBig }, { remove: ["db/gone.txt"] });
    await sync();
    await waitForVersion(srv.url, n.version + 1);

    const rest = await http(byHash, { headers: { range: `bytes=${MiB}-`, "if-range": String(first.headers.etag) } });
    expect(rest.status).toBe(206);
    expect(sha256(Buffer.concat([first.body, rest.body]))).toBe(sha256(oldBig));
    const gone = n.files.find((f) => f.path === "db/gone.txt");
    const goneBytes = await http(`${srv.url}.update-mirror/by-hash/sha256/${gone?.sha256}`);
    expect(goneBytes.status).toBe(200);
    expect(goneBytes.body.equals(removed)).toBe(true);

    // The plain path now serves generation N+1, and a resume guarded by N's ETag starts over with it.
    const now = await http(`${srv.url}${BIG}`);
    expect(now.headers.etag).toBe(`"sha256-${sha256(newBig)}"`);
    expect(now.body.equals(newBig)).toBe(true);
    const resumed = await http(`${srv.url}${BIG}`, { headers: { range: `bytes=${MiB}-`, "if-range": String(first.headers.etag) } });
    expect(resumed.status).toBe(200);
    expect(resumed.body.equals(newBig)).toBe(true);
    expect((await http(`${srv.url}db/gone.txt`)).status).toBe(404);
  });

  it("never sends a body that disagrees with its ETag while generations are committed under it", async () => {
    const paths = [BIG, "db/small.txt", "db/medium.bin"];
    const content = (v: number): Record<string, Buffer> => ({
      [BIG]: Buffer.concat([Buffer.from(`generation ${v}\n`), randomBytes(MiB)]),
      "db/small.txt": Buffer.from(`small, generation ${v}\n`),
      "db/medium.bin": Buffer.concat([randomBytes(200 * 1024), Buffer.from(`generation ${v}`)]),
    });
    await makeUpstream(up, { ...content(1), "stable.txt": "stable\n" });
    await sync();
    srv = await serveInProcess(mirror, { pollMs: 100, cacheBytes: 0 });
    const url = srv.url;

    let running = true;
    const mismatches: string[] = [];
    const statuses = new Map<number, number>();
    let checked = 0;
    const client = async (path: string, ranged: boolean) => {
      while (running) {
        const res = await http(`${url}${path}`, ranged ? { headers: { range: "bytes=100-" } } : {});
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status !== 200 && res.status !== 206) continue;
        const etag = /^"sha256-([0-9a-f]{64})"$/.exec(String(res.headers.etag))?.[1];
        if (!ranged && sha256(res.body) !== etag) mismatches.push(`${path}: body ${sha256(res.body)} under ETag ${etag}`);
        if (ranged) {
          // The rest of a range must be the same version: fetch the head by hash and compare the whole.
          const head = await http(`${url}.update-mirror/by-hash/sha256/${etag}`, { headers: { range: "bytes=0-99" } });
          if (sha256(Buffer.concat([head.body, res.body])) !== etag) mismatches.push(`${path}: range does not belong to ${etag}`);
        }
        checked += 1;
        // Two cores are shared with the syncs being measured: leave them some.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    const clients = [...paths.map((p) => client(p, false)), client(BIG, true), client("db/medium.bin", true)];
    for (let v = 2; v <= 5; v += 1) {
      await makeUpstream(up, content(v));
      await sync();
    }
    await waitForVersion(url, 5);
    running = false;
    await Promise.all(clients);

    expect(mismatches).toEqual([]);
    expect(checked).toBeGreaterThan(20);
    expect([...statuses.keys()].sort()).toEqual([200, 206]);
    const finalBig = await http(`${url}${BIG}`);
    expect(finalBig.body.subarray(0, 13).toString()).toBe("generation 5\n");
  });
});

describe("serve in the middle of a publish", () => {
  it("keeps serving generation N's bytes for N's paths while N+1's files are already in place", async () => {
    const old = randomBytes(300 * 1024);
    await makeUpstream(up, { [BIG]: old, "db/small.txt": "small v1\n" });
    await sync();
    srv = await serveInProcess(mirror, { pollMs: 60_000, cacheBytes: 0 });
    expect((await http(`${srv.url}${BIG}`)).body.equals(old)).toBe(true);

    // What the folder store does before it commits: keep the old content as an object, then rename the new one into place.
    const object = retainedLayout(mirror).object(sha256(old));
    await mkdir(dirname(object), { recursive: true });
    await link(join(mirror, BIG), object);
    const next = randomBytes(300 * 1024);
    await writeFile(join(dir, "staged"), next);
    await rename(join(dir, "staged"), join(mirror, BIG));
    await writeFile(join(dir, "staged-small"), "small v2\n");
    await rename(join(dir, "staged-small"), join(mirror, "db/small.txt"));

    const during = await http(`${srv.url}${BIG}`);
    expect(during.status).toBe(200);
    expect(during.headers.etag).toBe(`"sha256-${sha256(old)}"`);
    expect(during.body.equals(old)).toBe(true);
    const ranged = await http(`${srv.url}${BIG}`, { headers: { range: "bytes=1000-1999" } });
    expect(ranged.body.equals(old.subarray(1000, 2000))).toBe(true);
    // No retained copy of the small file's old bytes: rather no answer than bytes under the wrong ETag.
    const small = await http(`${srv.url}db/small.txt`);
    expect(small.status).toBe(503);
    expect(small.headers["retry-after"]).toBeDefined();
    expect(small.body.toString()).not.toContain("small v2");
  });
});
