// A pull while the mirror it reads commits a new version (held at a fixed point by a gating proxy): through our `serve` it finishes by-hash, through a plain static server it restarts; the endpoint is always exactly one manifest's files.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { REPO_ROOT, runCli, scratchDir, writeTree } from "../support/cli.js";
import { payloadTree, whichTree } from "../support/payload-tree.js";
import { startVendorServer } from "../servers/vendor-server.js";
import { serveInProcess } from "./serve-harness.js";

const PART = 512 * 1024;
const PARTS = 8;

let dir: string;
let cleanup: () => Promise<void>;
let up: string;
let mirror: string;
let to: string;
let closeServer: (() => Promise<void>) | undefined;

beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("pull-consistency"));
  up = join(dir, "up");
  mirror = join(dir, "mirror");
  to = join(dir, "endpoint", "bases");
});
afterEach(async () => {
  await closeServer?.();
  closeServer = undefined;
  await cleanup();
});

async function syncMirror(): Promise<void> {
  const r = await runCli(["sync", "--source", up, "--dest", mirror, "--keep-generations", "2", "--max-delete", "100%"]);
  if (r.code !== 0) throw new Error(`sync failed (${r.code}): ${r.stderr}`);
}

/** Version 1: eight big parts and a small file. */
async function firstVersion(): Promise<void> {
  const tree: Record<string, Buffer | string> = { "readme.txt": "stays the same\n" };
  for (let i = 0; i < PARTS; i++) tree[`db/part-${i}.bin`] = randomBytes(PART);
  await writeTree(up, tree);
  await syncMirror();
}

/** Version 2: five parts get other bytes of the same size, one goes, one is added. */
async function secondVersion(): Promise<void> {
  const tree: Record<string, Buffer> = { "db/added.bin": randomBytes(PART) };
  for (let i = 0; i < 5; i++) tree[`db/part-${i}.bin`] = randomBytes(PART);
  await writeTree(up, tree);
  await rm(join(up, `db/part-${PARTS - 1}.bin`));
  await syncMirror();
}

interface Event {
  type: string;
  path?: string;
  add?: number;
  update?: number;
  reason?: string;
  summary?: { result: string; upstreamVersion: number | null };
}

interface GatingProxy {
  url: string;
  /** Payload requests forwarded so far (not the manifest or its signature). */
  forwarded: string[];
  close(): Promise<void>;
}

/**
 * A forward HTTP proxy (absolute-form GETs, as the pull sends them through --proxy) that holds the
 * `holdAt`-th payload request until `whileHeld()` has finished, then forwards it. So the mirror
 * commits its next version at a fixed point of the pull, whatever the machine's load.
 */
async function gatingProxy(holdAt: number, whileHeld: () => Promise<void>): Promise<GatingProxy> {
  const forwarded: string[] = [];
  let held: Promise<void> | undefined;
  const server = createServer((req, res) => {
    const target = new URL(req.url ?? "/");
    const payload = !target.pathname.startsWith("/.update-mirror/manifest.json");
    const go = () => {
      if (payload) forwarded.push(target.pathname);
      const upstream = httpRequest(target, { method: req.method, headers: { ...req.headers, host: target.host }, agent: false }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    };
    res.on("error", () => undefined);
    if (payload && forwarded.length + 1 === holdAt && held === undefined) {
      held = whileHeld();
      // A failed commit shows as `committed: false` in the result; the held request just ends.
      held.then(go, () => res.destroy());
    } else go();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    forwarded,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Runs `pull --json` from `url` through a gating proxy, one file at a time: the third file's request
 * waits until `commit` (the mirror's next version) is done, then goes on. Resolves with the events.
 */
async function pullAcrossCommit(url: string, commit: () => Promise<void>): Promise<{ events: Event[]; code: number | null; stderr: string; committed: boolean }> {
  let committed = false;
  const proxy = await gatingProxy(3, async () => {
    await commit();
    committed = true;
  });
  try {
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, "bin/update-mirror.js"), "pull", "--source", url, "--to", to, "--json", "--concurrency", "1", "--retries", "1", "--proxy", proxy.url, "--connect-timeout", "5m"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const events: Event[] = [];
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    createInterface({ input: child.stdout }).on("line", (line) => events.push(JSON.parse(line) as Event));
    const code = await new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c)));
    return { events, code, stderr, committed };
  } finally {
    await proxy.close();
  }
}

/** Waits until `serve` answers with manifest `version` (it swaps its snapshot a moment after the commit). */
async function servedVersion(url: string, version: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`${url}.update-mirror/manifest.json`);
    if (((await res.json()) as { version: number }).version >= version) return;
    if (Date.now() > deadline) throw new Error(`serve did not switch to version ${version}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function endpointManifest(): Promise<{ files: { path: string; sha256: string }[]; origin: { upstreamVersion: number } }> {
  return JSON.parse(await readFile(join(to, ".update-mirror", "manifest.json"), "utf8"));
}

describe("pull during a commit on the serving side", () => {
  it("through our serve: finishes the version it chose via by-hash, whole, without a restart", async () => {
    await firstVersion();
    const v1 = await payloadTree(mirror);
    const srv = await serveInProcess(mirror, { pollMs: 100 });
    closeServer = () => srv.close();

    const run = await pullAcrossCommit(srv.url, async () => {
      await secondVersion();
      await servedVersion(srv.url, 2);
    });
    const v2 = await payloadTree(mirror);
    expect(v2).not.toEqual(v1);
    expect(run.code, run.stderr).toBe(0);
    // The commit landed between the pull's second and third file, or this test proved nothing.
    expect(run.committed).toBe(true);
    expect(run.events.filter((e) => e.type === "file:done").length).toBe(PARTS + 1);

    const which = whichTree(await payloadTree(to), { v1, v2 });
    expect(which, "the endpoint holds a mix of two mirror versions").not.toBe("mix");
    expect(run.events.filter((e) => e.type === "run:restart")).toEqual([]);
    expect(which).toBe("v1");
    expect((await endpointManifest()).origin.upstreamVersion).toBe(1);
    // Every file came by hash, so none of them was of the new generation.
    const payload = srv.access.filter((r) => r.status < 300 && !r.path.includes("/.update-mirror/manifest.json") && !r.path.endsWith(".minisig"));
    expect(payload.length).toBeGreaterThanOrEqual(PARTS + 1);
    expect(payload.filter((r) => !r.path.includes("/.update-mirror/by-hash/sha256/")).map((r) => r.path)).toEqual([]);
    const verified = await runCli(["verify", to]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);

    // The next pull moves to version 2, again whole.
    const next = await runCli(["pull", "--source", srv.url, "--to", to]);
    expect(next.code, next.stderr).toBe(0);
    expect(await payloadTree(to)).toEqual(v2);
    expect((await endpointManifest()).origin.upstreamVersion).toBe(2);
    expect((await runCli(["verify", to])).code).toBe(0);
  }, 180_000);

  it("through a plain static server (no by-hash): finishes whole, restarting on the new version when files of the old one are gone", async () => {
    await firstVersion();
    const v1 = await payloadTree(mirror);
    const server = await startVendorServer(mirror);
    closeServer = () => server.close();

    const run = await pullAcrossCommit(server.url, secondVersion);
    const v2 = await payloadTree(mirror);
    expect(run.code, run.stderr).toBe(0);
    expect(run.committed).toBe(true);
    expect(server.requests.some((r) => r.path.includes("by-hash"))).toBe(false);

    const which = whichTree(await payloadTree(to), { v1, v2 });
    expect(which, "the endpoint holds a mix of two mirror versions").not.toBe("mix");
    const restarts = run.events.filter((e) => e.type === "run:restart");
    const failed = run.events.filter((e) => e.type === "file:failed");
    // The third file (changed in version 2) now has other bytes than version 1 lists: it fails its
    // hash check, and the run starts over on version 2 rather than publish a mix.
    expect(failed.map((e) => e.path)).toContain("db/part-2.bin");
    expect(restarts.length).toBeGreaterThanOrEqual(1);
    expect(which).toBe("v2");
    const final = run.events.find((e) => e.type === "run:done")?.summary;
    expect(final?.upstreamVersion).toBe(which === "v1" ? 1 : 2);
    expect((await endpointManifest()).origin.upstreamVersion).toBe(which === "v1" ? 1 : 2);
    const verified = await runCli(["verify", to]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  }, 180_000);
});
