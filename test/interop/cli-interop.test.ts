// Our CLI against the real minisign: minisign -V accepts what index signs; verify accepts what minisign -S signs.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasCommand, runCli, scratchDir, writeTree } from "../support/cli.js";

const exec = promisify(execFile);
const hasMinisign = hasCommand("minisign");
if (!hasMinisign) console.warn("skipping CLI minisign interop: minisign not installed (apt-get install minisign; .ci/run installs it)");

describe.skipIf(!hasMinisign)("CLI interop with minisign", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let mirror: string;
  beforeAll(async () => {
    ({ dir, cleanup } = await scratchDir("interop"));
    mirror = join(dir, "mirror");
    await writeTree(mirror, { "a/b.bin": Buffer.alloc(100_000, 3), "c.txt": "c\n" });
  });
  afterAll(async () => cleanup());

  it("minisign -V (and -H, prehashed only) accepts a manifest signed by index", async () => {
    expect((await runCli(["keygen", "--out", join(dir, "ours")])).code).toBe(0);
    expect((await runCli(["index", mirror, "--key", join(dir, "ours.key")])).code).toBe(0);
    const manifest = join(mirror, ".update-mirror/manifest.json");
    const { stdout } = await exec("minisign", ["-Vm", manifest, "-p", join(dir, "ours.pub")]);
    expect(stdout).toMatch(/Signature and comment signature verified/);
    await exec("minisign", ["-VHm", manifest, "-p", join(dir, "ours.pub")]);
  });

  it("verify accepts a manifest signed by minisign -S with a minisign key, and index can sign with that key", async () => {
    const pub = join(dir, "theirs.pub");
    const key = join(dir, "theirs.key");
    await exec("minisign", ["-G", "-W", "-p", pub, "-s", key]);
    expect((await runCli(["index", mirror])).code).toBe(0);
    const manifest = join(mirror, ".update-mirror/manifest.json");
    await exec("minisign", ["-S", "-s", key, "-m", manifest, "-x", `${manifest}.minisig`]);
    const ok = await runCli(["verify", mirror, "--pubkey", pub]);
    expect(ok.stdout).toMatch(/OK$/m);
    expect(ok.code).toBe(0);

    expect((await runCli(["index", mirror, "--key", key])).code).toBe(0);
    await exec("minisign", ["-Vm", manifest, "-p", pub]);
    expect((await runCli(["verify", mirror, "--pubkey", pub])).code).toBe(0);
  });

  it("both sides reject a manifest changed after minisign signed it", async () => {
    const pub = join(dir, "theirs.pub");
    const manifest = join(mirror, ".update-mirror/manifest.json");
    await exec("sed", ["-i", "s/\"version\":[0-9]*/\"version\":99/", manifest]);
    await expect(exec("minisign", ["-Vm", manifest, "-p", pub])).rejects.toThrow();
    const r = await runCli(["verify", mirror, "--pubkey", pub]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/SIGNATURE invalid/);
  });
});
