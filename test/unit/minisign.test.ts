// Unit tests for the minisign formats: round trips, tampering, key mismatches, malformed input and the legacy form.
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import { KeyError, SignatureError } from "../../src/core/errors.js";
import {
  defaultTrustedComment,
  encodePublicKey,
  keyIdHex,
  parsePublicKey,
  signDetached,
  verifyDetached,
} from "../../src/crypto/minisign.js";
import type { PublicKey } from "../../src/crypto/minisign.js";

interface TestKey {
  keyId: Buffer;
  privateKey: KeyObject;
  raw: Buffer;
  pub: PublicKey;
}

function makeKey(keyId: Buffer = randomBytes(8)): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url");
  return { keyId, privateKey, raw, pub: parsePublicKey(encodePublicKey(keyId, raw), "test.pub") };
}

function b64(...parts: (Buffer | string)[]): string {
  return Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p))).toString("base64");
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected an error");
}

const data = Buffer.from("manifest contents\n");

describe("keyIdHex", () => {
  it("reads the 8 bytes little-endian, upper-case, padded to 16 digits", () => {
    expect(keyIdHex(Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]))).toBe("0000000000000001");
    expect(keyIdHex(Buffer.from([0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01]))).toBe("0123456789ABCDEF");
  });

  it("rejects a key id that is not 8 bytes", () => {
    expect(() => keyIdHex(Buffer.alloc(7))).toThrow(RangeError);
  });
});

describe("public keys", () => {
  it("encodes the two-line file and parses it back", () => {
    const k = makeKey(Buffer.from([0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01]));
    const text = encodePublicKey(k.keyId, k.raw);
    const lines = text.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe("untrusted comment: minisign public key 0123456789ABCDEF");
    expect(lines[1]).toHaveLength(56);
    expect(lines[2]).toBe("");
    const parsed = parsePublicKey(text, "k.pub");
    expect(parsed.keyId.equals(k.keyId)).toBe(true);
    expect(parsed.raw.equals(k.raw)).toBe(true);
    expect(parsed.key.asymmetricKeyType).toBe("ed25519");
  });

  it("accepts the bare base64 line, CRLF and a missing final newline", () => {
    const k = makeKey();
    const text = encodePublicKey(k.keyId, k.raw);
    const line = text.split("\n")[1] ?? "";
    for (const variant of [line, `${line}\n`, text.replaceAll("\n", "\r\n"), text.trimEnd()]) {
      expect(parsePublicKey(variant, "p").keyId.equals(k.keyId)).toBe(true);
    }
  });

  it.each([
    ["bad base64", (kid: Buffer, raw: Buffer) => `untrusted comment: x\n${b64("Ed", kid, raw).replace(/^./, "*")}\n`, /base64/],
    // A 42-byte key line needs no padding, so a truncated key is used to get a padded line to strip.
    ["unpadded base64", (kid: Buffer, raw: Buffer) => `untrusted comment: x\n${b64("Ed", kid, raw.subarray(0, 30)).replace(/=+$/, "")}\n`, /base64/],
    ["short key", (kid: Buffer, raw: Buffer) => `untrusted comment: x\n${b64("Ed", kid, raw.subarray(0, 29))}\n`, /bytes/],
    ["wrong algorithm", (kid: Buffer, raw: Buffer) => `untrusted comment: x\n${b64("ED", kid, raw)}\n`, /algorithm/],
    ["no comment line", (kid: Buffer, raw: Buffer) => `hello\n${b64("Ed", kid, raw)}\n`, /not a minisign public key/],
    ["comment only", () => "untrusted comment: x\n", /not a minisign public key/],
    ["empty", () => "", /not a minisign public key/],
  ])("rejects %s with a KeyError naming the source", (_name, build, why) => {
    const k = makeKey();
    const err = catchError(() => parsePublicKey(build(k.keyId, k.raw), "/etc/keys/vendor.pub"));
    expect(err).toBeInstanceOf(KeyError);
    expect((err as Error).message).toContain("/etc/keys/vendor.pub");
    expect((err as Error).message).toMatch(why);
  });
});

describe("signDetached / verifyDetached", () => {
  it("round trips with the prehashed algorithm", () => {
    const k = makeKey();
    const trusted = defaultTrustedComment("manifest.json", new Date("2024-05-01T00:00:00Z"));
    expect(trusted).toBe("timestamp:1714521600\tfile:manifest.json\thashed");
    const sig = signDetached(data, k, trusted);
    const lines = sig.split("\n");
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^untrusted comment: /);
    expect(Buffer.from(lines[1] ?? "", "base64").subarray(0, 2).toString("latin1")).toBe("ED");
    expect(lines[2]).toBe(`trusted comment: ${trusted}`);
    expect(verifyDetached(data, sig, k.pub, "m.minisig")).toEqual({ trustedComment: trusted, algorithm: "ED" });
  });

  it("signs empty data and keeps trailing spaces of the trusted comment", () => {
    const k = makeKey();
    const sig = signDetached(Buffer.alloc(0), k, "spaces  ", "custom");
    expect(sig.startsWith("untrusted comment: custom\n")).toBe(true);
    expect(verifyDetached(Buffer.alloc(0), sig, k.pub, "s").trustedComment).toBe("spaces  ");
  });

  it("fails on tampered data", () => {
    const k = makeKey();
    const sig = signDetached(data, k, "t");
    const err = catchError(() => verifyDetached(Buffer.from("manifest contents!\n"), sig, k.pub, "m.minisig"));
    expect(err).toBeInstanceOf(SignatureError);
    expect((err as Error).message).toMatch(/m\.minisig.*does not match the data/);
  });

  it("fails on a tampered trusted comment", () => {
    const k = makeKey();
    const sig = signDetached(data, k, "timestamp:1\tfile:a");
    const tampered = sig.replace("file:a", "file:b");
    const err = catchError(() => verifyDetached(data, tampered, k.pub, "m.minisig"));
    expect(err).toBeInstanceOf(SignatureError);
    expect((err as Error).message).toMatch(/m\.minisig.*trusted comment signature failed/);
  });

  it("names both key ids when the signature is from another key", () => {
    const signer = makeKey();
    const other = makeKey();
    const err = catchError(() => verifyDetached(data, signDetached(data, signer, "t"), other.pub, "m.minisig"));
    expect(err).toBeInstanceOf(SignatureError);
    const message = (err as Error).message;
    expect(message).toContain("m.minisig");
    expect(message).toContain(keyIdHex(signer.keyId));
    expect(message).toContain(keyIdHex(other.keyId));
  });

  it("fails when the key id matches but the key does not", () => {
    const signer = makeKey();
    const impostor = makeKey(signer.keyId);
    const err = catchError(() => verifyDetached(data, signDetached(data, signer, "t"), impostor.pub, "m.minisig"));
    expect(err).toBeInstanceOf(SignatureError);
    expect((err as Error).message).toMatch(/does not match the data/);
  });

  it("tolerates CRLF and a missing final newline", () => {
    const k = makeKey();
    const sig = signDetached(data, k, "crlf");
    expect(verifyDetached(data, sig.replaceAll("\n", "\r\n"), k.pub, "s").trustedComment).toBe("crlf");
    expect(verifyDetached(data, sig.trimEnd(), k.pub, "s").trustedComment).toBe("crlf");
  });

  it("verifies a legacy Ed signature built by hand", () => {
    const k = makeKey();
    const trusted = "timestamp:1700000000\tfile:legacy.bin";
    const signature = sign(null, data, k.privateKey);
    const global = sign(null, Buffer.concat([signature, Buffer.from(trusted)]), k.privateKey);
    const text = `untrusted comment: legacy\n${b64("Ed", k.keyId, signature)}\ntrusted comment: ${trusted}\n${global.toString("base64")}\n`;
    expect(verifyDetached(data, text, k.pub, "legacy.minisig")).toEqual({ trustedComment: trusted, algorithm: "Ed" });
    expect(() => verifyDetached(Buffer.from("other"), text, k.pub, "legacy.minisig")).toThrow(/does not match the data/);
  });

  describe("malformed signatures fail with a SignatureError naming the source", () => {
    const k = makeKey();
    const good = signDetached(data, k, "t").split("\n");
    const replaceLine = (index: number, value: string): string => good.map((l, i) => (i === index ? value : l)).join("\n");
    const sigLine = Buffer.from(good[1] ?? "", "base64");
    it.each([
      ["bad base64", replaceLine(1, `${(good[1] ?? "").slice(0, -4)}!!!=`), /base64/],
      ["unpadded base64", replaceLine(3, (good[3] ?? "").replace(/=+$/, "")), /base64/],
      ["short signature line", replaceLine(1, sigLine.subarray(0, 40).toString("base64")), /bytes/],
      ["wrong algorithm", replaceLine(1, b64("XX", sigLine.subarray(2))), /algorithm/],
      ["missing line", good.filter((_, i) => i !== 2).join("\n"), /4 lines/],
      ["wrong untrusted prefix", replaceLine(0, "comment: x"), /line 1/],
      ["wrong trusted prefix", replaceLine(2, "trusted: t"), /line 3/],
      ["long untrusted comment", replaceLine(0, `untrusted comment: ${"u".repeat(1004)}`), /untrusted comment is longer/],
      ["empty", "", /4 lines/],
    ])("%s", (_name, text, why) => {
      const err = catchError(() => verifyDetached(data, text, k.pub, "bad.minisig"));
      expect(err).toBeInstanceOf(SignatureError);
      expect((err as Error).message).toContain("bad.minisig");
      expect((err as Error).message).toMatch(why);
    });
  });

  it("rejects comments minisign could not carry", () => {
    const k = makeKey();
    for (const [trusted, untrusted] of [
      ["a\nb", undefined],
      ["a\rb", undefined],
      ["bell\u0007", undefined],
      ["del\u007f", undefined],
      ["lone \ud800 surrogate", undefined],
      ["t".repeat(8174), undefined],
      ["ok", "a\nb"],
      ["ok", "a\rb"],
      ["ok", "u".repeat(1004)],
    ] as const) {
      expect(() => signDetached(data, k, trusted, untrusted)).toThrow(SignatureError);
    }
  });

  it("accepts comments exactly at minisign's limits, TAB and non-ASCII text", () => {
    const k = makeKey();
    const trusted = `${"t".repeat(8169)}é\tx`; // 8169 + 2 + 1 + 1 = 8173 bytes
    expect(Buffer.byteLength(trusted)).toBe(8173);
    const sig = signDetached(data, k, trusted, "u".repeat(1003));
    expect(verifyDetached(data, sig, k.pub, "s").trustedComment).toBe(trusted);
    expect(verifyDetached(data, signDetached(data, k, "emoji 🔑 ok"), k.pub, "s").trustedComment).toBe("emoji 🔑 ok");
  });
});
