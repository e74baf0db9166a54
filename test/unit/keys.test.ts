// Unit tests for our key files: keygen modes and overwrite rules, passphrases, key ids and minisign secret keys.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KeyError } from "../../src/core/errors.js";
import {
  deriveKeyId,
  loadPublicKey,
  loadSecretKey,
  secretKeyPermissionWarning,
  writeKeyPair,
} from "../../src/crypto/keys.js";
import { encodePublicKey, keyIdHex, parsePublicKey, signDetached, verifyDetached } from "../../src/crypto/minisign.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "keys-test-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

// A `minisign -G -W` secret key built by hand; the checksum is random because nothing here can compute it.
function minisignSecretKeyText(kdf: "\0\0" | "Sc" = "\0\0"): { text: string; keyId: Buffer; publicRaw: Buffer } {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const seed = Buffer.from(jwk.d ?? "", "base64url");
  const publicRaw = Buffer.from(jwk.x ?? "", "base64url");
  const keyId = randomBytes(8);
  const bytes = Buffer.concat([
    Buffer.from(`Ed${kdf}B2`, "latin1"),
    randomBytes(32), // salt
    Buffer.alloc(16), // opslimit, memlimit
    keyId,
    seed,
    publicRaw,
    randomBytes(32), // chk
  ]);
  expect(bytes.length).toBe(158);
  return { text: `untrusted comment: minisign secret key\n${bytes.toString("base64")}\n`, keyId, publicRaw };
}

describe("writeKeyPair", () => {
  it("writes a 0600 secret key and a 0644 minisign public key, creating the folder", async () => {
    const prefix = join(dir, "nested", "folder", "signing");
    const result = await writeKeyPair(prefix, {});
    expect(result.secretPath).toBe(`${prefix}.key`);
    expect(result.publicPath).toBe(`${prefix}.pub`);
    expect((await stat(result.secretPath)).mode & 0o777).toBe(0o600);
    expect((await stat(result.publicPath)).mode & 0o777).toBe(0o644);
    expect(await readFile(result.secretPath, "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const pubText = await readFile(result.publicPath, "utf8");
    expect(pubText).toMatch(new RegExp(`^untrusted comment: minisign public key ${result.keyId}\\n[A-Za-z0-9+/]{56}\\n$`));
    expect(await secretKeyPermissionWarning(result.secretPath)).toBeUndefined();
  });

  it("derives the key id from the public key, matching the .pub file", async () => {
    const { secretPath, publicPath, keyId } = await writeKeyPair(join(dir, "k"), {});
    const secret = await loadSecretKey(secretPath);
    const pub = await loadPublicKey(publicPath);
    expect(secret.keyId.equals(pub.keyId)).toBe(true);
    expect(secret.publicRaw.equals(pub.raw)).toBe(true);
    expect(deriveKeyId(secret.publicRaw).equals(secret.keyId)).toBe(true);
    expect(keyIdHex(pub.keyId)).toBe(keyId);
    const data = Buffer.from("payload");
    expect(verifyDetached(data, signDetached(data, secret, "t"), pub, "s").trustedComment).toBe("t");
  });

  it("refuses to overwrite either file without force and leaves no half pair", async () => {
    const prefix = join(dir, "k");
    const first = await writeKeyPair(prefix, {});
    const before = await readFile(first.secretPath, "utf8");
    const err = await rejection(writeKeyPair(prefix, {}));
    expect(err).toBeInstanceOf(KeyError);
    expect(err.message).toContain(first.secretPath);
    expect(await readFile(first.secretPath, "utf8")).toBe(before);

    const onlyPub = join(dir, "p");
    await writeFile(`${onlyPub}.pub`, "existing");
    const err2 = await rejection(writeKeyPair(onlyPub, {}));
    expect(err2).toBeInstanceOf(KeyError);
    expect(err2.message).toContain(`${onlyPub}.pub`);
    expect((await readdir(dir)).sort()).toEqual(["k.key", "k.pub", "p.pub"]);
  });

  it("overwrites both files with force and leaves no temporary files", async () => {
    const prefix = join(dir, "k");
    const first = await writeKeyPair(prefix, {});
    const second = await writeKeyPair(prefix, { force: true });
    expect(second.keyId).not.toBe(first.keyId);
    const secret = await loadSecretKey(second.secretPath);
    const pub = await loadPublicKey(second.publicPath);
    expect(keyIdHex(secret.keyId)).toBe(second.keyId);
    expect(keyIdHex(pub.keyId)).toBe(second.keyId);
    expect((await stat(second.secretPath)).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual(["k.key", "k.pub"]);
  });

  it("restores the old secret key when the public key cannot be replaced", async () => {
    const prefix = join(dir, "k");
    const first = await writeKeyPair(prefix, {});
    const before = await readFile(first.secretPath, "utf8");
    // A non-empty directory in place of the .pub makes the second rename fail after the first succeeded.
    await rm(first.publicPath);
    await mkdir(first.publicPath);
    await writeFile(join(first.publicPath, "blocker"), "x");
    await expect(writeKeyPair(prefix, { force: true })).rejects.toThrow(first.publicPath);
    expect(await readFile(first.secretPath, "utf8")).toBe(before);
    expect((await readdir(dir)).sort()).toEqual(["k.key", "k.pub"]);
  });

  it("force also works when no pair exists yet", async () => {
    const result = await writeKeyPair(join(dir, "fresh"), { force: true });
    expect((await readdir(dir)).sort()).toEqual(["fresh.key", "fresh.pub"]);
    expect(keyIdHex((await loadSecretKey(result.secretPath)).keyId)).toBe(result.keyId);
  });

  it("refuses an empty passphrase", async () => {
    expect(await rejection(writeKeyPair(join(dir, "k"), { passphrase: "" }))).toBeInstanceOf(KeyError);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("loadSecretKey", () => {
  it("needs the passphrase of an encrypted key and rejects a wrong one", async () => {
    const { secretPath, keyId } = await writeKeyPair(join(dir, "enc"), { passphrase: "correct horse" });
    expect(await readFile(secretPath, "utf8")).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);

    const missing = await rejection(loadSecretKey(secretPath));
    expect(missing).toBeInstanceOf(KeyError);
    expect(missing.message).toBe(`secret key ${secretPath} is encrypted: give --passphrase-env or --passphrase-file`);

    const wrong = await rejection(loadSecretKey(secretPath, "wrong"));
    expect(wrong).toBeInstanceOf(KeyError);
    expect(wrong.message).toContain(secretPath);
    expect(wrong.message).toMatch(/wrong passphrase/);

    expect(keyIdHex((await loadSecretKey(secretPath, "correct horse")).keyId)).toBe(keyId);
  });

  it("names the file when it is missing, not a key, or not Ed25519", async () => {
    const missing = join(dir, "missing.key");
    const e1 = await rejection(loadSecretKey(missing));
    expect(e1).toBeInstanceOf(KeyError);
    expect(e1.message).toContain(missing);

    const junk = join(dir, "junk.key");
    await writeFile(junk, "hello\n");
    const e2 = await rejection(loadSecretKey(junk));
    expect(e2).toBeInstanceOf(KeyError);
    expect(e2.message).toContain(junk);

    const badPem = join(dir, "bad.key");
    await writeFile(badPem, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    const e3 = await rejection(loadSecretKey(badPem));
    expect(e3).toBeInstanceOf(KeyError);
    expect(e3.message).toMatch(/not a PEM private key/);

    const ec = join(dir, "ec.key");
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await writeFile(ec, String(privateKey.export({ type: "pkcs8", format: "pem" })));
    const e4 = await rejection(loadSecretKey(ec));
    expect(e4).toBeInstanceOf(KeyError);
    expect(e4.message).toMatch(new RegExp(`${ec}.*expected Ed25519`));

    const { publicPath } = await writeKeyPair(join(dir, "x"), {});
    const e5 = await rejection(loadSecretKey(publicPath));
    expect(e5).toBeInstanceOf(KeyError);
    expect(e5.message).toMatch(/public key, not a secret key/);
  });

  it("loads an unencrypted minisign secret key with its own key id", async () => {
    const built = minisignSecretKeyText();
    const file = join(dir, "minisign.key");
    await writeFile(file, built.text.replaceAll("\n", "\r\n"));
    const secret = await loadSecretKey(file);
    expect(secret.keyId.equals(built.keyId)).toBe(true);
    expect(secret.publicRaw.equals(built.publicRaw)).toBe(true);
    const pub = parsePublicKey(encodePublicKey(built.keyId, built.publicRaw), "minisign.pub");
    const data = Buffer.from("signed with a minisign key");
    expect(verifyDetached(data, signDetached(data, secret, "t"), pub, "s").algorithm).toBe("ED");
  });

  it("rejects a minisign key whose public half does not match its seed", async () => {
    const built = minisignSecretKeyText();
    const bytes = Buffer.from(built.text.split("\n")[1] ?? "", "base64");
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    const file = join(dir, "damaged.key");
    await writeFile(file, `untrusted comment: x\n${bytes.toString("base64")}\n`);
    const err = await rejection(loadSecretKey(file));
    expect(err).toBeInstanceOf(KeyError);
    expect(err.message).toMatch(/damaged/);
  });

  it("refuses an encrypted minisign key and says how to decrypt it", async () => {
    const file = join(dir, "encrypted-minisign.key");
    await writeFile(file, minisignSecretKeyText("Sc").text);
    const err = await rejection(loadSecretKey(file));
    expect(err).toBeInstanceOf(KeyError);
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/minisign -C/);
  });
});

describe("loadPublicKey", () => {
  it("names the file when it is missing or malformed", async () => {
    const missing = join(dir, "none.pub");
    const e1 = await rejection(loadPublicKey(missing));
    expect(e1).toBeInstanceOf(KeyError);
    expect(e1.message).toContain(missing);

    const bad = join(dir, "bad.pub");
    await writeFile(bad, "untrusted comment: x\nnot base64\n");
    const e2 = await rejection(loadPublicKey(bad));
    expect(e2).toBeInstanceOf(KeyError);
    expect(e2.message).toContain(bad);
  });
});

describe("secretKeyPermissionWarning", () => {
  it("warns when group or others can access the key", async () => {
    const { secretPath } = await writeKeyPair(join(dir, "k"), {});
    await chmod(secretPath, 0o640);
    expect(await secretKeyPermissionWarning(secretPath)).toMatch(/k\.key.*0640.*chmod 600/);
    await chmod(secretPath, 0o600);
    expect(await secretKeyPermissionWarning(secretPath)).toBeUndefined();
    expect(await rejection(secretKeyPermissionWarning(join(dir, "none.key")))).toBeInstanceOf(KeyError);
  });
});
