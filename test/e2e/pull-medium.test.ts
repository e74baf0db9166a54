// pull from exported media (a folder, a tar, a split zip) and from a mirror folder gives byte-for-byte the set a pull over HTTP gives, with the mirror's signature checked on every path.
import { lstat, mkdir, readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCli, scratchDir } from "../support/cli.js";
import { payloadTree } from "../support/payload-tree.js";
import { makeUpstream } from "../servers/vendor-server.js";
import { type InProcessServer, serveInProcess } from "./serve-harness.js";

let dir: string;
let cleanup: () => Promise<void>;
let mirror: string;
let keys: string;
let srv: InProcessServer | undefined;

const TAGS = [
  { match: "kes/**", set: { product: "kes" } },
  { match: "kes/linux/**", set: { platform: "linux" } },
  { match: "kes/windows/**", set: { platform: "windows" } },
  { match: "other/**", set: { product: "other" } },
];
const SELECTION = ["--select", "product=kes", "--include", "kes/linux/**", "--include", "kes/common/**", "--exclude", "**/*.tmp"];

function tree(generation: string): Record<string, Buffer | string> {
  const out: Record<string, Buffer | string> = {
    "kes/linux/bases.db": Buffer.alloc(300_000, `linux ${generation} `),
    "kes/linux/engine.mod": `kes linux engine ${generation}\n`,
    "kes/linux/skip.tmp": "left out by --exclude\n",
    "kes/common/license.key": `license ${generation}\n`,
    "kes/windows/bases.db": Buffer.alloc(200_000, `windows ${generation} `),
    "other/app.bin": `other ${generation}\n`,
  };
  for (let i = 0; i < 12; i++) out[`kes/linux/daily/d-${String(i).padStart(2, "0")}.cvd`] = `daily ${i} ${generation}\n`;
  return out;
}

beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("pull-medium"));
  mirror = join(dir, "mirror");
  keys = join(dir, "keys");
  for (const name of ["dmz", "other"]) expect((await runCli(["keygen", "--out", join(keys, name)])).code).toBe(0);
  // The vendor's folder (with tags), then the DMZ mirror made from it with `sync`, signed with the DMZ key.
  await makeUpstream(join(dir, "vendor"), tree("v1"), { tagRules: TAGS });
  const synced = await runCli(["sync", "--source", join(dir, "vendor"), "--dest", mirror, "--sign-key", join(keys, "dmz.key")]);
  expect(synced.code, synced.stderr).toBe(0);
});
afterEach(async () => {
  await srv?.close();
  srv = undefined;
  await cleanup();
});

interface EndpointManifest {
  files: unknown[];
  origin: { upstreamVersion: number; upstream: string };
}
const manifestOf = async (to: string) => JSON.parse(await readFile(join(to, ".update-mirror", "manifest.json"), "utf8")) as EndpointManifest;

async function pull(source: string, to: string, key: string, ...extra: string[]) {
  return runCli(["pull", "--source", source, "--to", to, "--trust", join(keys, `${key}.pub`), "--retries", "0", ...SELECTION, ...extra]);
}

describe("pull from media and mirror folders", () => {
  it("gives the same set as over HTTP from a folder export, a tar, a split zip and the mirror folder itself", async () => {
    const usb = join(dir, "usb");
    // An archive goes into a folder that exists: the medium's.
    await mkdir(join(usb, "split"), { recursive: true });
    for (const target of [join(usb, "folder"), join(usb, "full.tar"), join(usb, "split", "full.zip")]) {
      const args = ["export", mirror, "--to", target, ...(target.endsWith(".zip") ? ["--split-size", "128k"] : [])];
      const exported = await runCli(args);
      expect(exported.code, `${args.join(" ")}: ${exported.stderr}`).toBe(0);
    }
    // The zip really is in volumes, so the pull has to put them together.
    expect((await readdir(join(usb, "split"))).length).toBeGreaterThan(1);

    srv = await serveInProcess(mirror);
    const overHttp = join(dir, "ep-http", "bases");
    const r = await pull(srv.url, overHttp, "dmz");
    expect(r.code, r.stderr).toBe(0);
    const expected = await payloadTree(overHttp);
    expect(Object.keys(expected).sort()).toEqual(["kes/common/license.key", "kes/linux/bases.db", "kes/linux/engine.mod", ...Array.from({ length: 12 }, (_, i) => `kes/linux/daily/d-${String(i).padStart(2, "0")}.cvd`)].sort());
    const httpManifest = await manifestOf(overHttp);

    const media: Record<string, string> = {
      "folder export": join(usb, "folder"),
      "tar export": join(usb, "full.tar"),
      "split zip export": join(usb, "split", "full.zip"),
      "mirror folder": mirror,
    };
    for (const [what, source] of Object.entries(media)) {
      const to = join(dir, `ep-${what.replaceAll(" ", "-")}`, "bases");
      const pulled = await pull(source, to, "dmz");
      expect(pulled.code, `${what}: ${pulled.stderr}`).toBe(0);
      expect((await lstat(to)).isSymbolicLink(), what).toBe(true);
      expect(await payloadTree(to), what).toEqual(expected);
      const manifest = await manifestOf(to);
      expect(manifest.files, what).toEqual(httpManifest.files);
      expect(manifest.origin.upstreamVersion, what).toBe(httpManifest.origin.upstreamVersion);
      const verified = await runCli(["verify", to]);
      expect(verified.code, `${what}: ${verified.stdout}${verified.stderr}`).toBe(0);
      // A second pull from the same medium is a no-op.
      const again = await pull(source, to, "dmz", "--json");
      expect(again.code, `${what}: ${again.stderr}`).toBe(0);
      expect(again.stdout, what).toMatch(/"result":"unchanged"/);
    }
  }, 300_000);

  it("refuses a mirror signed by another key on every path, and leaves no endpoint behind", async () => {
    const usb = join(dir, "usb");
    await mkdir(usb);
    for (const target of [join(usb, "full.tar"), join(usb, "folder")]) expect((await runCli(["export", mirror, "--to", target])).code).toBe(0);
    srv = await serveInProcess(mirror);
    const sources: Record<string, string> = { http: srv.url, "folder export": join(usb, "folder"), "tar export": join(usb, "full.tar"), "mirror folder": mirror };
    for (const [what, source] of Object.entries(sources)) {
      const to = join(dir, `ep-${what.replaceAll(" ", "-")}`, "bases");
      const refused = await pull(source, to, "other");
      expect(refused.code, `${what} was accepted with the wrong key: ${refused.stdout}`).not.toBe(0);
      expect(refused.stderr, what).toMatch(/sign|trust|key/i);
      await expect(lstat(to), what).rejects.toThrow(/ENOENT/);
      // With the right key the same source is taken.
      const taken = await pull(source, to, "dmz");
      expect(taken.code, `${what}: ${taken.stderr}`).toBe(0);
    }
  }, 180_000);

  it("refuses an unsigned mirror when --trust is given, over HTTP and from a folder", async () => {
    const unsigned = join(dir, "unsigned");
    expect((await runCli(["sync", "--source", join(dir, "vendor"), "--dest", unsigned])).code).toBe(0);
    srv = await serveInProcess(unsigned);
    for (const [what, source] of Object.entries({ http: srv.url, "mirror folder": unsigned })) {
      const to = join(dir, `ep-${what.replaceAll(" ", "-")}`, "bases");
      const refused = await pull(source, to, "dmz");
      expect(refused.code, `${what} was accepted unsigned: ${refused.stdout}`).not.toBe(0);
      await expect(lstat(to), what).rejects.toThrow(/ENOENT/);
    }
  }, 180_000);
});
