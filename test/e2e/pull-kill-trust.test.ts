// A crash after pull switched the link but before it saved its state must not lower the rollback floor: an older signed manifest replayed afterwards is still refused.
import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, scratchDir } from "../support/cli.js";
import { payloadTree } from "../support/payload-tree.js";
import { makeKeyPair, makeUpstream, startVendorServer, type VendorServer } from "../servers/vendor-server.js";

let dir: string;
let cleanup: () => Promise<void>;
let servers: VendorServer[] = [];

beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("pull-kill-trust"));
});
afterEach(async () => {
  for (const s of servers) await s.close();
  servers = [];
  await cleanup();
});

async function serve(root: string): Promise<VendorServer> {
  const s = await startVendorServer(root);
  servers.push(s);
  return s;
}

describe("the rollback floor across a crash in the publish", () => {
  // A kill -9 or power cut right after the link switched leaves the folder on B; whatever state.json then
  // holds (here: put back as the run before B left it, the worst case), the floor must still be B's version,
  // which the committed set itself names (origin.upstreamVersion).
  for (const crashed of [false, true]) {
    it(crashed ? "after a crash between the switch and the state write, a replayed older manifest is refused" : "without a crash, a replayed older manifest is refused (control)", async () => {
      const key = await makeKeyPair(join(dir, "dmz"));
      const up = join(dir, "up");
      const to = join(dir, "endpoint", "bases");
      const state = join(dir, "endpoint", ".bases.update-mirror", "private", "state.json");
      const tree: Record<string, string> = {};
      for (let i = 0; i < 10; i++) tree[`db/f-${i}.db`] = `file ${i} A\n`;
      await makeUpstream(up, tree, { signingKey: key.secretKey });
      // The attacker's copy of signed version 1, replayed later.
      await cp(up, join(dir, "replay"), { recursive: true });
      const s = await serve(up);
      const pull = (url: string) => runCli(["pull", "--source", url, "--to", to, "--trust", join(dir, "dmz.pub"), "--retries", "0"]);

      expect((await pull(s.url)).code).toBe(0);
      const stateAfterA = await readFile(state);
      await makeUpstream(up, { "db/f-0.db": "file 0 B\n", "db/new.db": "new in B\n" }, { signingKey: key.secretKey });
      const b = await pull(s.url);
      expect(b.code, b.stderr).toBe(0);
      const setB = await payloadTree(to);
      if (crashed) await writeFile(state, stateAfterA);

      const replay = await serve(join(dir, "replay"));
      const r = await pull(replay.url);
      expect(await payloadTree(to), "the endpoint went back to version 1 of the mirror").toEqual(setB);
      expect(r.code, `${r.stdout}${r.stderr}`).toBe(4);
      expect(r.stderr).toMatch(/rollback/);
    }, 120_000);
  }
});
