// `pull` driven as a user would: failover between real HTTP servers, trust, selection, whole-set apply, rollback, hooks and status.
import { cp, lstat, readdir, readFile, readlink, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, scratchDir } from "../support/cli.js";
import { freePort } from "../support/nginx.js";
import { makeKeyPair, makeUpstream, startVendorServer, type VendorServer } from "../servers/vendor-server.js";

let dir: string;
let cleanup: () => Promise<void>;
let servers: VendorServer[];
let to: string;
let pub: string;
let key: Awaited<ReturnType<typeof makeKeyPair>>;

const TREE_V1: Record<string, string> = {
  "kes/linux/bases.db": "kes bases v1\n",
  "kes/linux/engine.mod": "kes engine v1\n",
  "kes/windows/bases.db": "kes windows v1\n",
  "other/app.bin": "other app v1\n",
};
const TAGS = [
  { match: "kes/**", set: { product: "kes" } },
  { match: "kes/linux/**", set: { platform: "linux" } },
  { match: "kes/windows/**", set: { platform: "windows" } },
  { match: "other/**", set: { product: "other" } },
];

beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("pull"));
  servers = [];
  to = join(dir, "endpoint", "bases");
  key = await makeKeyPair(join(dir, "dmz"));
  pub = join(dir, "dmz.pub");
});
afterEach(async () => {
  for (const s of servers) await s.close();
  await cleanup();
});

async function serveDir(root: string): Promise<VendorServer> {
  const s = await startVendorServer(root);
  servers.push(s);
  return s;
}

async function upstream(name: string, tree: Record<string, string>, options: { remove?: string[]; signingKey?: typeof key.secretKey } = {}) {
  return makeUpstream(join(dir, name), tree, { signingKey: options.signingKey ?? key.secretKey, tagRules: TAGS, ...(options.remove && { remove: options.remove }) });
}

/** The payload of the endpoint folder as path -> content (the set's .update-mirror/ left out). */
async function treeOf(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const rel = join(entry.parentPath, entry.name).slice(root.length + 1).split("\\").join("/");
    if (rel.startsWith(".update-mirror/")) continue;
    out[rel] = await readFile(join(root, rel), "utf8");
  }
  return out;
}

function pull(sources: string[], ...extra: string[]) {
  return runCli(["pull", ...sources.flatMap((s) => ["--source", s]), "--to", to, "--trust", pub, "--retries", "0", ...extra]);
}

/** A TCP server that accepts connections and never answers: the stalled mirror. */
async function stallingServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("pull applies whole sets", () => {
  it("makes the folder a link to a complete, verified set, and a no-op costs one request", async () => {
    await upstream("up", TREE_V1);
    const s = await serveDir(join(dir, "up"));
    const r = await pull([s.url]);
    expect(r.code, r.stderr).toBe(0);
    expect((await lstat(to)).isSymbolicLink()).toBe(true);
    expect(await readlink(to)).toBe(join(".bases.update-mirror", "sets", "1"));
    expect(await treeOf(to)).toEqual(TREE_V1);
    expect((await runCli(["verify", to])).code).toBe(0);

    s.requests.length = 0;
    const again = await pull([s.url]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/up to date/);
    expect(s.requests.map((q) => q.path)).toEqual([".update-mirror/manifest.json"]);
  });

  it("takes only the selected subset, by tags and globs", async () => {
    await upstream("up", TREE_V1);
    const s = await serveDir(join(dir, "up"));
    expect((await pull([s.url], "--select", "product=kes", "--select", "platform=linux")).code).toBe(0);
    expect(Object.keys(await treeOf(to)).sort()).toEqual(["kes/linux/bases.db", "kes/linux/engine.mod"]);
    const narrowed = await pull([s.url], "--include", "other/**");
    expect(narrowed.code).toBe(4);
    expect(narrowed.stderr).toMatch(/max-delete/);
    expect((await pull([s.url], "--include", "other/**", "--max-delete", "100%")).code).toBe(0);
    expect(Object.keys(await treeOf(to))).toEqual(["other/app.bin"]);
  });

  it("applies a change as a new set, keeps the previous one, and restores its exact bytes on --rollback", async () => {
    await upstream("up", TREE_V1);
    const s = await serveDir(join(dir, "up"));
    expect((await pull([s.url])).code).toBe(0);
    await upstream("up", { "kes/linux/bases.db": "kes bases v2\n", "kes/new.db": "new\n" }, { remove: ["other/app.bin"] });
    const r = await pull([s.url]);
    expect(r.code, r.stderr).toBe(0);
    const v2 = { ...TREE_V1, "kes/linux/bases.db": "kes bases v2\n", "kes/new.db": "new\n" } as Record<string, string>;
    delete v2["other/app.bin"];
    expect(await treeOf(to)).toEqual(v2);

    const back = await runCli(["pull", "--to", to, "--rollback"]);
    expect(back.code, back.stderr).toBe(0);
    expect(await treeOf(to)).toEqual(TREE_V1);
    expect((await runCli(["verify", to])).code).toBe(0);

    // The version rolled away from is held back: the next pull leaves the folder as it is, without failing.
    const held = await pull([s.url]);
    expect(held.code, held.stderr).toBe(0);
    expect(held.stdout).toMatch(/rolled back from/);
    expect(await treeOf(to)).toEqual(TREE_V1);
    // A newer version is taken again.
    await upstream("up", { "kes/linux/bases.db": "kes bases v3\n" });
    expect((await pull([s.url])).code).toBe(0);
    expect((await treeOf(to))["kes/linux/bases.db"]).toBe("kes bases v3\n");
  });

  it("brings back a file something changed inside the endpoint folder", async () => {
    await upstream("up", TREE_V1);
    const s = await serveDir(join(dir, "up"));
    expect((await pull([s.url])).code).toBe(0);
    await writeFile(join(to, "kes/linux/bases.db"), "scribbled over\n");
    const r = await pull([s.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("1 file(s) changed since they were applied (first: kes/linux/bases.db)");
    expect(await treeOf(to)).toEqual(TREE_V1);
  });

  it("refuses to take over a folder it did not make, and changes nothing in it", async () => {
    await upstream("up", TREE_V1);
    const s = await serveDir(join(dir, "up"));
    await writeFile(join(dir, "placeholder"), "");
    await cp(join(dir, "placeholder"), join(to, "product-file.dat"), { recursive: true });
    const r = await pull([s.url]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`${to} exists and is not a folder pull manages`);
    expect(await readdir(to)).toEqual(["product-file.dat"]);
  });
});

describe("failover to the second source", () => {
  async function twoMirrors(): Promise<{ good: VendorServer }> {
    await upstream("up", TREE_V1);
    return { good: await serveDir(join(dir, "up")) };
  }

  it("when the first refuses connections", async () => {
    const { good } = await twoMirrors();
    const dead = `http://127.0.0.1:${await freePort()}/`;
    const r = await pull([dead, good.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`source ${dead}: error: .*ECONNREFUSED`));
    expect(r.stdout).toContain(`using ${good.url}`);
    expect(await treeOf(to)).toEqual(TREE_V1);
  });

  it("when the first stalls past the timeout, within the timeout and a margin", async () => {
    const { good } = await twoMirrors();
    const stall = await stallingServer();
    try {
      const started = Date.now();
      const r = await pull([stall.url, good.url], "--connect-timeout", "2s");
      const elapsed = Date.now() - started;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`source ${stall.url}: error: .*[Tt]imeout`));
      expect(r.stdout).toContain(`using ${good.url}`);
      // Generous: the run itself (node start-up included) takes well under a second here.
      expect(elapsed).toBeLessThan(2_000 + 8_000);
    } finally {
      await stall.close();
    }
  });

  it("when the first serves a tampered file", async () => {
    const { good } = await twoMirrors();
    await cp(join(dir, "up"), join(dir, "copy"), { recursive: true });
    const bad = await serveDir(join(dir, "copy"));
    bad.setFault("kes/linux/bases.db", { kind: "wrongBytes" });
    const r = await pull([bad.url, good.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`kes/linux/bases.db: giving up on ${bad.url}: .*SHA-256`));
    expect(good.requests.map((q) => q.path)).toContain("kes/linux/bases.db");
    expect(await treeOf(to)).toEqual(TREE_V1);
  });

  it("when the first serves an older signed version, and refuses that version once a newer one was applied", async () => {
    await upstream("up", TREE_V1);
    await cp(join(dir, "up"), join(dir, "old"), { recursive: true });
    await upstream("up", { "kes/linux/bases.db": "kes bases v2\n" });
    const old = await serveDir(join(dir, "old"));
    const good = await serveDir(join(dir, "up"));
    const r = await pull([old.url, good.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`source ${old.url}: passed over: offers version 1, older than version 2 at ${good.url}`);
    expect((await treeOf(to))["kes/linux/bases.db"]).toBe("kes bases v2\n");

    // Only the old mirror left: a rollback, refused, and the folder keeps version 2.
    const alone = await pull([old.url]);
    expect(alone.code).toBe(4);
    expect(alone.stderr).toMatch(/older than version 2 already accepted/);
    expect((await treeOf(to))["kes/linux/bases.db"]).toBe("kes bases v2\n");
  });

  it("when the first serves a manifest signed by another key", async () => {
    const { good } = await twoMirrors();
    const other = await makeKeyPair(join(dir, "intruder"));
    await upstream("forged", TREE_V1, { signingKey: other.secretKey });
    await upstream("forged", { "kes/linux/bases.db": "forged\n" }, { signingKey: other.secretKey });
    const forged = await serveDir(join(dir, "forged"));
    const r = await pull([forged.url, good.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`source ${forged.url}: refused: .*key`));
    expect(await treeOf(to)).toEqual(TREE_V1);
  });

  it("fails with exit 7 and leaves the previous set when no source works", async () => {
    const { good } = await twoMirrors();
    expect((await pull([good.url])).code).toBe(0);
    await good.close();
    servers = [];
    const r = await pull([good.url, join(dir, "no-medium-inserted")]);
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/no usable source/);
    expect(await treeOf(to)).toEqual(TREE_V1);
  });
});

describe("hooks", () => {
  it("runs --on-update with the old and new versions, and reports a failing hook with exit 9 after applying", async () => {
    await upstream("up", TREE_V1);
    const s = await serveDir(join(dir, "up"));
    const record = join(dir, "hook.txt");
    const hook = `echo "$UPDATE_MIRROR_EVENT $UPDATE_MIRROR_OLD_VERSION->$UPDATE_MIRROR_NEW_VERSION $UPDATE_MIRROR_TARGET" >> '${record}'`;
    expect((await pull([s.url], "--on-update", hook)).code).toBe(0);
    await upstream("up", { "kes/new.db": "n\n" });
    expect((await pull([s.url], "--on-update", hook)).code).toBe(0);
    // Nothing changed: the hook does not run.
    expect((await pull([s.url], "--on-update", hook)).code).toBe(0);
    expect(await readFile(record, "utf8")).toBe(`update ->1 ${to}\nupdate 1->2 ${to}\n`);

    await upstream("up", { "kes/newer.db": "n\n" });
    const failing = await pull([s.url], "--on-update", "echo reload failed >&2; exit 3");
    expect(failing.code).toBe(9);
    expect(failing.stderr).toContain("on-update: reload failed");
    expect(failing.stderr).toMatch(/--on-update hook exited with 3; version 3 was applied/);
    expect((await treeOf(to))["kes/newer.db"]).toBe("n\n");
  });

  it("runs --on-error after a failure with the error and exit code", async () => {
    const record = join(dir, "err.txt");
    const r = await pull([`http://127.0.0.1:${await freePort()}/`], "--on-error", `echo "$UPDATE_MIRROR_EXIT_CODE $UPDATE_MIRROR_ERROR" > '${record}'`);
    expect(r.code).toBe(7);
    expect(await readFile(record, "utf8")).toMatch(/^7 no usable source/);
  });
});

describe("status", () => {
  it("reports version and age with Nagios exit codes, and --json", async () => {
    const none = await runCli(["status", "--dest", to]);
    expect(none.code).toBe(3);
    expect(none.stdout).toMatch(/^UPDATE-MIRROR UNKNOWN - /);

    await upstream("up", TREE_V1);
    const s = await serveDir(join(dir, "up"));
    expect((await pull([s.url])).code).toBe(0);
    const ok = await runCli(["status", "--dest", to]);
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/^UPDATE-MIRROR OK - version 1 is \d+s old \| age=\d+s;259200;604800;0$/m);
    expect(ok.stdout).toContain(`upstream version 1 from ${s.url}`);

    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await runCli(["status", "--dest", to, "--warn", "1s", "--crit", "1h"])).code).toBe(1);
    expect((await runCli(["status", "--dest", to, "--warn", "1s", "--crit", "1s"])).code).toBe(2);

    await s.close();
    servers = [];
    expect((await pull([s.url])).code).toBe(7);
    const json = await runCli(["status", "--dest", to, "--json"]);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as { status: string; kind: string; upstreamVersion: number; files: number; lastRun: { result: string; error: { code: string } } };
    expect(report).toMatchObject({ status: "ok", kind: "endpoint", upstreamVersion: 1, files: 4, lastRun: { result: "failed", error: { code: "E_SOURCE" } } });
  });
});
