// minisign-compatible public key and detached signature formats (text in, text out), built on node:crypto.
import { createHash, createPublicKey, sign, verify } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { KeyError, SignatureError } from "../core/errors.js";

/** A minisign public key: the key id as stored in the file, the raw Ed25519 key and a ready-to-use KeyObject. */
export interface PublicKey {
  /** 8 bytes, in file order (not the display order of keyIdHex). */
  keyId: Buffer;
  /** 32-byte Ed25519 public key. */
  raw: Buffer;
  key: KeyObject;
}

const UNTRUSTED_PREFIX = "untrusted comment: ";
const TRUSTED_PREFIX = "trusted comment: ";
// minisign reads each comment line into a fixed buffer (1024 / 8192 bytes) that also holds the prefix,
// the newline and a NUL; longer lines are refused by the CLI, so we refuse to write or accept them.
const UNTRUSTED_MAX_BYTES = 1003;
const TRUSTED_MAX_BYTES = 8173;
const DEFAULT_UNTRUSTED = "signature from update-mirror secret key";

const ALG_PUBLIC = "Ed";
const ALG_LEGACY = "Ed";
const ALG_PREHASHED = "ED";
const KEY_ID_BYTES = 8;
const PUBLIC_RAW_BYTES = 32;
const SIG_BYTES = 64;
const PUBLIC_KEY_FILE_BYTES = 2 + KEY_ID_BYTES + PUBLIC_RAW_BYTES;
const SIG_LINE_BYTES = 2 + KEY_ID_BYTES + SIG_BYTES;

/**
 * minisign's display form of a key id: the 8 bytes as a little-endian u64 in upper-case hex, 16 digits.
 * Throws RangeError when keyId is not 8 bytes (a programming error, not a user one).
 */
export function keyIdHex(keyId: Buffer): string {
  if (keyId.length !== KEY_ID_BYTES) throw new RangeError(`key id must be ${KEY_ID_BYTES} bytes, got ${keyId.length}`);
  return keyId.readBigUInt64LE(0).toString(16).toUpperCase().padStart(16, "0");
}

/**
 * The two-line minisign `.pub` text for a key.
 * Throws RangeError when keyId is not 8 bytes or raw is not 32 bytes.
 */
export function encodePublicKey(keyId: Buffer, raw: Buffer): string {
  if (raw.length !== PUBLIC_RAW_BYTES) throw new RangeError(`public key must be ${PUBLIC_RAW_BYTES} bytes, got ${raw.length}`);
  const line = Buffer.concat([Buffer.from(ALG_PUBLIC, "latin1"), keyId, raw]).toString("base64");
  return `${UNTRUSTED_PREFIX}minisign public key ${keyIdHex(keyId)}\n${line}\n`;
}

/**
 * Parses a minisign public key: the two-line `.pub` file or the bare base64 line that `minisign -P` takes.
 * Throws KeyError naming `source` when the text is not a well-formed Ed25519 minisign public key.
 */
export function parsePublicKey(text: string, source: string): PublicKey {
  const fail = (why: string): KeyError => new KeyError(`public key ${source}: ${why}`);
  const lines = splitLines(text);
  let keyLine: string;
  if (lines.length === 1 && lines[0] !== undefined && !lines[0].startsWith("untrusted comment:")) {
    keyLine = lines[0];
  } else if (lines.length === 2 && lines[0]?.startsWith("untrusted comment:") && lines[1] !== undefined) {
    keyLine = lines[1];
  } else {
    throw fail("not a minisign public key (expected an \"untrusted comment:\" line and a base64 key line, or the base64 line alone)");
  }
  const bytes = strictBase64(keyLine);
  if (bytes === undefined) throw fail("key line is not valid padded base64");
  if (bytes.length !== PUBLIC_KEY_FILE_BYTES) {
    throw fail(`key line decodes to ${bytes.length} bytes, expected ${PUBLIC_KEY_FILE_BYTES}`);
  }
  const alg = bytes.subarray(0, 2).toString("latin1");
  if (alg !== ALG_PUBLIC) throw fail(`unsupported key algorithm ${JSON.stringify(alg)} (expected "Ed")`);
  const keyId = Buffer.from(bytes.subarray(2, 2 + KEY_ID_BYTES));
  const raw = Buffer.from(bytes.subarray(2 + KEY_ID_BYTES));
  let key: KeyObject;
  try {
    key = publicKeyFromRaw(raw);
  } catch (err) {
    throw new KeyError(`public key ${source}: not a usable Ed25519 key`, { cause: err });
  }
  return { keyId, raw, key };
}

/** Builds an Ed25519 public KeyObject from its 32 raw bytes (Node 20 only imports raw keys through JWK). */
export function publicKeyFromRaw(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
}

/** The trusted comment minisign writes by default for a prehashed signature. */
export function defaultTrustedComment(fileName: string, now: Date): string {
  return `timestamp:${Math.floor(now.getTime() / 1000)}\tfile:${fileName}\thashed`;
}

/**
 * Signs `data` in minisign's prehashed `ED` form and returns the four-line `.minisig` text.
 * Always prehashed: node's Ed25519 is one-shot, so the legacy form would need the whole file as the message.
 * Throws SignatureError when a comment contains a line break, the trusted comment contains other control
 * characters than TAB or broken UTF-16, or a comment is longer than minisign accepts;
 * KeyError when the key is not an Ed25519 private key; RangeError when keyId is not 8 bytes.
 */
export function signDetached(
  data: Buffer,
  secret: { keyId: Buffer; privateKey: KeyObject },
  trustedComment: string,
  untrustedComment: string = DEFAULT_UNTRUSTED,
): string {
  if (secret.keyId.length !== KEY_ID_BYTES) throw new RangeError(`key id must be ${KEY_ID_BYTES} bytes, got ${secret.keyId.length}`);
  if (secret.privateKey.type !== "private" || secret.privateKey.asymmetricKeyType !== "ed25519") {
    throw new KeyError("signing key is not an Ed25519 private key");
  }
  checkUntrustedComment(untrustedComment);
  checkTrustedComment(trustedComment);
  const digest = createHash("blake2b512").update(data).digest();
  const signature = sign(null, digest, secret.privateKey);
  const globalSignature = sign(null, Buffer.concat([signature, Buffer.from(trustedComment, "utf8")]), secret.privateKey);
  const sigLine = Buffer.concat([Buffer.from(ALG_PREHASHED, "latin1"), secret.keyId, signature]).toString("base64");
  return `${UNTRUSTED_PREFIX}${untrustedComment}\n${sigLine}\n${TRUSTED_PREFIX}${trustedComment}\n${globalSignature.toString("base64")}\n`;
}

/**
 * Verifies a minisign detached signature (prehashed `ED` or legacy `Ed`) of `data` against `pub`,
 * including the signature over the trusted comment, and returns the trusted comment.
 * The trusted comment is signed as the UTF-8 bytes of the text given, so callers must decode the
 * `.minisig` file as UTF-8. Throws SignatureError naming `sigSource` when the signature text is
 * malformed, was made by another key id, does not match the data, or its trusted comment signature fails.
 */
export function verifyDetached(
  data: Buffer,
  sigText: string,
  pub: PublicKey,
  sigSource: string,
): { trustedComment: string; algorithm: "ED" | "Ed" } {
  const malformed = (why: string): SignatureError => new SignatureError(`signature ${sigSource}: malformed: ${why}`);
  const lines = splitLines(sigText);
  if (lines.length !== 4) throw malformed(`expected 4 lines, found ${lines.length}`);
  const [untrustedLine, sigLine, trustedLine, globalLine] = lines as [string, string, string, string];

  if (!untrustedLine.startsWith(UNTRUSTED_PREFIX)) throw malformed(`line 1 must start with "${UNTRUSTED_PREFIX}"`);
  if (Buffer.byteLength(untrustedLine.slice(UNTRUSTED_PREFIX.length), "utf8") > UNTRUSTED_MAX_BYTES) {
    throw malformed(`untrusted comment is longer than ${UNTRUSTED_MAX_BYTES} bytes`);
  }
  const sigBytes = strictBase64(sigLine);
  if (sigBytes === undefined) throw malformed("line 2 is not valid padded base64");
  if (sigBytes.length !== SIG_LINE_BYTES) throw malformed(`line 2 decodes to ${sigBytes.length} bytes, expected ${SIG_LINE_BYTES}`);
  const alg = sigBytes.subarray(0, 2).toString("latin1");
  if (alg !== ALG_PREHASHED && alg !== ALG_LEGACY) throw malformed(`unsupported signature algorithm ${JSON.stringify(alg)}`);
  if (!trustedLine.startsWith(TRUSTED_PREFIX)) throw malformed(`line 3 must start with "${TRUSTED_PREFIX}"`);
  const trustedComment = trustedLine.slice(TRUSTED_PREFIX.length);
  const trustedBytes = Buffer.from(trustedComment, "utf8");
  if (trustedBytes.length > TRUSTED_MAX_BYTES) throw malformed(`trusted comment is longer than ${TRUSTED_MAX_BYTES} bytes`);
  const globalSignature = strictBase64(globalLine);
  if (globalSignature === undefined) throw malformed("line 4 is not valid padded base64");
  if (globalSignature.length !== SIG_BYTES) throw malformed(`line 4 decodes to ${globalSignature.length} bytes, expected ${SIG_BYTES}`);

  const keyId = sigBytes.subarray(2, 2 + KEY_ID_BYTES);
  if (!keyId.equals(pub.keyId)) {
    throw new SignatureError(
      `signature ${sigSource}: key id mismatch: the signature was made by key ${keyIdHex(keyId)} but the public key is ${keyIdHex(pub.keyId)}`,
    );
  }
  const signature = sigBytes.subarray(2 + KEY_ID_BYTES);
  const message = alg === ALG_PREHASHED ? createHash("blake2b512").update(data).digest() : data;
  if (!verify(null, message, pub.key, signature)) {
    throw new SignatureError(`signature ${sigSource}: signature does not match the data (the file was altered or signed by another key with the same id)`);
  }
  if (!verify(null, Buffer.concat([signature, trustedBytes]), pub.key, globalSignature)) {
    throw new SignatureError(`signature ${sigSource}: trusted comment signature failed (the trusted comment was altered)`);
  }
  return { trustedComment, algorithm: alg === ALG_PREHASHED ? "ED" : "Ed" };
}

// Lines without their CR/LF; a leading BOM and trailing empty lines are dropped so that files
// saved by Windows editors or without a final newline parse like the CLI reads them.
function splitLines(text: string): string[] {
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const lines = body.split("\n").map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line));
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

// Node's base64 decoder silently skips junk and accepts missing padding; minisign does not, and
// accepting what the CLI rejects would let a file verify here but not there.
function strictBase64(line: string): Buffer | undefined {
  if (line.length === 0 || line.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(line)) return undefined;
  const bytes = Buffer.from(line, "base64");
  // Re-encoding catches non-zero bits hidden in the padding, which have more than one spelling.
  return bytes.toString("base64") === line ? bytes : undefined;
}

function checkUntrustedComment(comment: string): void {
  if (/[\r\n\0]/.test(comment)) throw new SignatureError("untrusted comment must not contain line breaks or NUL");
  if (Buffer.byteLength(comment, "utf8") > UNTRUSTED_MAX_BYTES) {
    throw new SignatureError(`untrusted comment is longer than ${UNTRUSTED_MAX_BYTES} bytes (minisign would refuse it)`);
  }
}

function checkTrustedComment(comment: string): void {
  for (let i = 0; i < comment.length; i++) {
    const c = comment.charCodeAt(i);
    if (c === 0x0d || c === 0x0a) throw new SignatureError("trusted comment must not contain line breaks");
    if ((c < 0x20 && c !== 0x09) || (c >= 0x7f && c <= 0x9f)) {
      throw new SignatureError(`trusted comment contains control character U+${c.toString(16).toUpperCase().padStart(4, "0")}`);
    }
    // A lone surrogate would be written as U+FFFD, so the signed bytes would differ from the caller's text.
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = comment.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) throw new SignatureError("trusted comment is not valid Unicode (lone surrogate)");
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      throw new SignatureError("trusted comment is not valid Unicode (lone surrogate)");
    }
  }
  if (Buffer.byteLength(comment, "utf8") > TRUSTED_MAX_BYTES) {
    throw new SignatureError(`trusted comment is longer than ${TRUSTED_MAX_BYTES} bytes (minisign would refuse it)`);
  }
}
