// kill -9 of a real `sync` mid-run, then a second run: the mirror verifies clean and finished files are not fetched again.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { verifyTree } from "../../src/mirror/verify-tree.js";
import { REPO_ROOT, runCli, scratchDir } from "../support/cli.js";
import { makeUpstream, startVendorServer, type VendorServer } from "../servers/vendor-server.js";

let dir: string;
let cleanup: () => Promise<void>;
let server: VendorServer;

beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("kill"));
});
afterEach(async () => {
  await server?.close();
  await cleanup();
});

describe("kill -9 mid-sync", () => {
  it("leaves the previous mirror intact and the next run resumes without refetching finished files", async () => {
    const up = join(dir, "up");
    const mirror = join(dir, "mirror");
    const tree: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i += 1) tree[`db/file-${String(i).padStart(2, "0")}.bin`] = Buffer.alloc(64 * 1024, i);
    await makeUpstream(up, { "base.txt": "v1\n" });
    server = await startVendorServer(up);
    expect((await runCli(["sync", "--source", server.url, "--dest", mirror])).code).toBe(0);
    await makeUpstream(up, tree);
    server.setFault("*", { kind: "slow", delayMs: 20, chunkBytes: 8192 });

    const child = spawn(process.execPath, [join(REPO_ROOT, "bin/update-mirror.js"), "sync", "--source", server.url, "--dest", mirror, "--json", "--concurrency", "2"], { stdio: ["ignore", "pipe", "pipe"] });
    const finished: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.on("line", (line) => {
        const event = JSON.parse(line) as { type: string; path?: string };
        if (event.type === "file:done" && event.path) finished.push(event.path);
        if (finished.length >= 6) {
          child.kill("SIGKILL");
          resolve();
        }
      });
      child.on("exit", () => resolve());
      child.on("error", reject);
    });
    await new Promise((resolve) => child.once("exit", resolve).once("close", resolve));
    expect(finished.length).toBeGreaterThanOrEqual(6);

    // The mirror still serves the previous version, and verifies.
    const between = await verifyTree(mirror);
    expect(between).toMatchObject({ ok: true, version: 1 });

    server.setFault("*", undefined);
    server.requests.length = 0;
    const second = await runCli(["sync", "--source", server.url, "--dest", mirror]);
    expect(second.code, second.stderr).toBe(0);
    const fetchedAgain = server.requests.map((r) => r.path).filter((p) => finished.includes(p));
    expect(fetchedAgain).toEqual([]);
    expect(await verifyTree(mirror)).toMatchObject({ ok: true, version: 2, checkedFiles: 41 });
  });
});
