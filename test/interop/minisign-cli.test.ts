// Interop tests against the real minisign CLI: our keys and signatures must pass `minisign -V`, and theirs ours.
import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyError, SignatureError } from "../../src/core/errors.js";
import { loadPublicKey, loadSecretKey, writeKeyPair } from "../../src/crypto/keys.js";
import { defaultTrustedComment, encodePublicKey, signDetached, verifyDetached } from "../../src/crypto/minisign.js";

const execFileAsync = promisify(execFile);

const probe = spawnSync("minisign", ["-v"], { encoding: "utf8" });
const hasMinisign = probe.error === undefined && probe.status === 0;
if (!hasMinisign) console.warn("skipping minisign interop: minisign not installed (apt-get install minisign)");

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

// Never throws on a non-zero exit: several cases expect minisign to fail.
async function minisign(cwd: string, args: string[], input?: string): Promise<RunResult> {
  const pending = execFileAsync("minisign", args, { cwd, encoding: "utf8" });
  // Closing stdin keeps an unexpected password prompt from hanging the test; minisign may exit before
  // reading it, and the resulting EPIPE is not a test failure.
  pending.child.stdin?.on("error", () => undefined);
  if (input === undefined) pending.child.stdin?.end();
  else pending.child.stdin?.end(input);
  try {
    const { stdout, stderr } = await pending;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== "number") throw err;
    return { code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

describe.skipIf(!hasMinisign)("minisign CLI interop", () => {
  let dir: string;
  const content = Buffer.from("vendor update payload\n".repeat(1000));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "minisign-interop-"));
    await writeFile(join(dir, "payload.bin"), content);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("minisign verifies our key and signature, also when requiring prehashed input", async () => {
    const keys = await writeKeyPair(join(dir, "ours"), {});
    const secret = await loadSecretKey(keys.secretPath);
    await writeFile(join(dir, "ours.minisig"), signDetached(content, secret, defaultTrustedComment("payload.bin", new Date())));

    const plain = await minisign(dir, ["-Vm", "payload.bin", "-x", "ours.minisig", "-p", "ours.pub"]);
    expect(plain.stderr).toBe("");
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/Signature and comment signature verified/);
    expect(plain.stdout).toMatch(/Trusted comment: timestamp:\d+\tfile:payload\.bin\thashed/);

    const prehashed = await minisign(dir, ["-H", "-Vm", "payload.bin", "-x", "ours.minisig", "-p", "ours.pub"]);
    expect(prehashed.code).toBe(0);

    const pubLine = (await readFile(keys.publicPath, "utf8")).split("\n")[1] ?? "";
    const bare = await minisign(dir, ["-Vm", "payload.bin", "-x", "ours.minisig", "-P", pubLine]);
    expect(bare.code).toBe(0);
  });

  it("we verify minisign's prehashed and legacy signatures", async () => {
    const gen = await minisign(dir, ["-G", "-W", "-p", "theirs.pub", "-s", "theirs.key"]);
    expect(gen.code).toBe(0);
    const pub = await loadPublicKey(join(dir, "theirs.pub"));

    const signed = await minisign(dir, ["-S", "-s", "theirs.key", "-m", "payload.bin", "-x", "theirs.minisig"]);
    expect(signed.code).toBe(0);
    const result = verifyDetached(content, await readFile(join(dir, "theirs.minisig"), "utf8"), pub, "theirs.minisig");
    expect(result.algorithm).toBe("ED");
    expect(result.trustedComment).toMatch(/^timestamp:\d+\tfile:payload\.bin\thashed$/);

    const legacy = await minisign(dir, [
      "-S", "-l", "-s", "theirs.key", "-m", "payload.bin", "-x", "legacy.minisig", "-t", "legacy with\ttab  ",
    ]);
    expect(legacy.code).toBe(0);
    const legacyResult = verifyDetached(content, await readFile(join(dir, "legacy.minisig"), "utf8"), pub, "legacy.minisig");
    expect(legacyResult).toEqual({ algorithm: "Ed", trustedComment: "legacy with\ttab  " });
  });

  it("signs with a minisign -G -W secret key so that minisign accepts it", async () => {
    await minisign(dir, ["-G", "-W", "-f", "-p", "ms.pub", "-s", "ms.key"]);
    const secret = await loadSecretKey(join(dir, "ms.key"));
    const theirPub = await readFile(join(dir, "ms.pub"), "utf8");
    // minisign 0.11 prints the comment's key id without zero padding, so only the key line is compared.
    expect(encodePublicKey(secret.keyId, secret.publicRaw).split("\n")[1]).toBe(theirPub.split("\n")[1]);

    await writeFile(join(dir, "ms.minisig"), signDetached(content, secret, "signed by update-mirror"));
    const verified = await minisign(dir, ["-H", "-Vm", "payload.bin", "-x", "ms.minisig", "-p", "ms.pub"]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/Trusted comment: signed by update-mirror/);
  });

  it("refuses an encrypted minisign secret key", async () => {
    const gen = await minisign(dir, ["-G", "-f", "-p", "enc.pub", "-s", "enc.key"], "pw\npw\n");
    expect(gen.code).toBe(0);
    const err = await loadSecretKey(join(dir, "enc.key")).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KeyError);
    expect((err as Error).message).toMatch(/minisign -C/);
  });

  it("a file altered after signing fails on both sides", async () => {
    await writeKeyPair(join(dir, "alt"), { force: true });
    const ours = await loadSecretKey(join(dir, "alt.key"));
    await minisign(dir, ["-G", "-W", "-f", "-p", "alt-theirs.pub", "-s", "alt-theirs.key"]);
    await writeFile(join(dir, "altered.bin"), content);
    await writeFile(join(dir, "altered.ours.minisig"), signDetached(content, ours, "t"));
    const signed = await minisign(dir, ["-S", "-s", "alt-theirs.key", "-m", "altered.bin", "-x", "altered.theirs.minisig"]);
    expect(signed.code).toBe(0);

    const altered = Buffer.concat([content, Buffer.from("x")]);
    await writeFile(join(dir, "altered.bin"), altered);

    const cliOurs = await minisign(dir, ["-Vm", "altered.bin", "-x", "altered.ours.minisig", "-p", "alt.pub"]);
    expect(cliOurs.code).not.toBe(0);
    expect(cliOurs.stderr).toMatch(/Signature verification failed/);
    const cliTheirs = await minisign(dir, ["-Vm", "altered.bin", "-x", "altered.theirs.minisig", "-p", "alt-theirs.pub"]);
    expect(cliTheirs.code).not.toBe(0);

    const oursSig = await readFile(join(dir, "altered.ours.minisig"), "utf8");
    const theirsSig = await readFile(join(dir, "altered.theirs.minisig"), "utf8");
    const ourPub = await loadPublicKey(join(dir, "alt.pub"));
    const theirPub = await loadPublicKey(join(dir, "alt-theirs.pub"));
    expect(() => verifyDetached(altered, oursSig, ourPub, "altered.ours.minisig")).toThrow(/does not match the data/);
    expect(() => verifyDetached(altered, theirsSig, theirPub, "altered.theirs.minisig")).toThrow(SignatureError);
    // The unaltered bytes still verify, so the failures above are about the data only.
    expect(verifyDetached(content, theirsSig, theirPub, "altered.theirs.minisig").algorithm).toBe("ED");
  });
});
