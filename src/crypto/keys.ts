// Our signing key files: a PKCS#8 PEM secret key (optionally passphrase-encrypted) and a minisign `.pub`.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { link, lstat, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { KeyError, fsError } from "../core/errors.js";
import { encodePublicKey, keyIdHex, parsePublicKey } from "./minisign.js";
import type { PublicKey } from "./minisign.js";

/** A loaded secret key with what signing needs: the key id, the private key and its raw public key. */
export interface SecretKey {
  keyId: Buffer;
  privateKey: KeyObject;
  /** 32-byte Ed25519 public key. */
  publicRaw: Buffer;
}

const SECRET_MODE = 0o600;
const PUBLIC_MODE = 0o644;

// minisign -G -W secret key layout (decoded base64, 158 bytes).
const MS_SECRET_BYTES = 158;
const MS_KDF = { start: 2, end: 4 };
const MS_CHK_ALG = { start: 4, end: 6 };
const MS_KEY_ID = { start: 54, end: 62 };
const MS_SEED = { start: 62, end: 94 };
const MS_PK = { start: 94, end: 126 };

/**
 * Our key id for a public key: the first 8 bytes of BLAKE2b-512 over the raw key, so the PEM file
 * alone determines it and nothing else needs storing.
 * Throws RangeError when publicRaw is not 32 bytes.
 */
export function deriveKeyId(publicRaw: Buffer): Buffer {
  if (publicRaw.length !== 32) throw new RangeError(`public key must be 32 bytes, got ${publicRaw.length}`);
  return Buffer.from(createHash("blake2b512").update(publicRaw).digest().subarray(0, 8));
}

/**
 * Generates an Ed25519 key pair and writes `<prefix>.key` (PKCS#8 PEM, mode 0600, encrypted when a
 * passphrase is given) and `<prefix>.pub` (minisign format, mode 0644), creating the folder if needed.
 * Either both files are written or neither is changed.
 * Throws KeyError when a file exists and `force` is not set, or the passphrase is empty;
 * NotFoundError/IoError (via fsError) when the file system refuses.
 */
export async function writeKeyPair(
  outPrefix: string,
  options: { passphrase?: string; force?: boolean },
): Promise<{ secretPath: string; publicPath: string; keyId: string }> {
  const secretPath = `${outPrefix}.key`;
  const publicPath = `${outPrefix}.pub`;
  if (options.passphrase === "") throw new KeyError(`refusing to encrypt ${secretPath} with an empty passphrase`);

  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const publicRaw = publicRawOf(publicKey);
  const keyId = deriveKeyId(publicRaw);
  const pem = String(
    options.passphrase === undefined
      ? privateKey.export({ type: "pkcs8", format: "pem" })
      : privateKey.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: options.passphrase }),
  );
  const pub = encodePublicKey(keyId, publicRaw);

  const dir = dirname(secretPath);
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw fsError(err, `key folder ${dir}`);
  }
  if (options.force === true) await replacePair(secretPath, pem, publicPath, pub);
  else await createPair(secretPath, pem, publicPath, pub);
  await syncDir(dir);
  return { secretPath, publicPath, keyId: keyIdHex(keyId) };
}

/**
 * Loads a secret key: our PKCS#8 PEM (plain or encrypted) or an unencrypted minisign secret key
 * (`minisign -G -W`). Throws KeyError naming `file` when it is missing or unreadable, not a private key,
 * not Ed25519, encrypted without a passphrase, the passphrase is wrong, or it is an encrypted minisign key.
 */
export async function loadSecretKey(file: string, passphrase?: string): Promise<SecretKey> {
  const text = await readKeyFile(file, "secret key");
  if (text.includes("-----BEGIN")) return loadPemSecretKey(file, text, passphrase);
  return loadMinisignSecretKey(file, text);
}

/** Loads a minisign public key file. Throws KeyError naming `file` when it is unreadable or malformed. */
export async function loadPublicKey(file: string): Promise<PublicKey> {
  return parsePublicKey(await readKeyFile(file, "public key"), file);
}

/**
 * A warning when the secret key file can be read or written by group or others, else undefined.
 * Throws KeyError naming `file` when it cannot be stat'ed.
 */
export async function secretKeyPermissionWarning(file: string): Promise<string | undefined> {
  let mode: number;
  try {
    mode = (await stat(file)).mode & 0o777;
  } catch (err) {
    throw new KeyError(fsError(err, `secret key ${file}`).message, { cause: err });
  }
  if ((mode & 0o077) === 0) return undefined;
  return `secret key ${file} is accessible by group or others (mode ${mode.toString(8).padStart(4, "0")}); run: chmod 600 ${file}`;
}

function publicRawOf(key: KeyObject): Buffer {
  const x = key.export({ format: "jwk" }).x;
  if (x === undefined) throw new KeyError("Ed25519 key has no public part");
  return Buffer.from(x, "base64url");
}

async function readKeyFile(file: string, role: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    // Key problems all map to one exit code, so a missing key is a KeyError, not a NotFoundError.
    throw new KeyError(fsError(err, `${role} ${file}`).message, { cause: err });
  }
}

function loadPemSecretKey(file: string, text: string, passphrase: string | undefined): SecretKey {
  const encrypted = text.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----");
  if (encrypted && (passphrase === undefined || passphrase === "")) {
    throw new KeyError(`secret key ${file} is encrypted: give --passphrase-env or --passphrase-file`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(
      encrypted ? { key: text, format: "pem", passphrase } : { key: text, format: "pem" },
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ERR_MISSING_PASSPHRASE") {
      throw new KeyError(`secret key ${file} is encrypted: give --passphrase-env or --passphrase-file`, { cause: err });
    }
    if (encrypted) throw new KeyError(`secret key ${file}: wrong passphrase (or the file is damaged)`, { cause: err });
    throw new KeyError(`secret key ${file}: not a PEM private key`, { cause: err });
  }
  if (privateKey.asymmetricKeyType !== "ed25519") {
    throw new KeyError(`secret key ${file}: is a ${privateKey.asymmetricKeyType ?? "unknown"} key, expected Ed25519`);
  }
  const publicRaw = publicRawOf(createPublicKey(privateKey));
  return { keyId: deriveKeyId(publicRaw), privateKey, publicRaw };
}

function loadMinisignSecretKey(file: string, text: string): SecretKey {
  const fail = (why: string): KeyError => new KeyError(`secret key ${file}: ${why}`);
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const [comment, keyLine] = lines;
  if (lines.length !== 2 || comment === undefined || keyLine === undefined || !comment.startsWith("untrusted comment:")) {
    throw fail("not a PEM private key or a minisign secret key");
  }
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(keyLine) && keyLine.length % 4 === 0 ? Buffer.from(keyLine, "base64") : undefined;
  if (bytes === undefined || bytes.length !== MS_SECRET_BYTES) {
    if (bytes?.length === 42) throw fail("is a minisign public key, not a secret key");
    throw fail("not a PEM private key or a minisign secret key");
  }
  const kdf = bytes.subarray(MS_KDF.start, MS_KDF.end).toString("latin1");
  if (bytes.subarray(0, 2).toString("latin1") !== "Ed" || bytes.subarray(MS_CHK_ALG.start, MS_CHK_ALG.end).toString("latin1") !== "B2") {
    throw fail("unsupported minisign secret key algorithm");
  }
  if (kdf === "Sc") {
    throw fail(
      "is an encrypted minisign secret key: remove its password with `minisign -C -W -s <file>`, or create a key with our keygen",
    );
  }
  if (kdf !== "\0\0") throw fail(`unsupported minisign key derivation ${JSON.stringify(kdf)}`);
  // The stored checksum is BLAKE2b-256, which node:crypto cannot compute (blake2b512 is not an XOF and
  // a shorter BLAKE2b is not a truncation), so it is not verified; the public half is checked instead.
  const keyId = Buffer.from(bytes.subarray(MS_KEY_ID.start, MS_KEY_ID.end));
  const seed = bytes.subarray(MS_SEED.start, MS_SEED.end);
  const storedPublic = Buffer.from(bytes.subarray(MS_PK.start, MS_PK.end));
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({
      key: { kty: "OKP", crv: "Ed25519", d: seed.toString("base64url"), x: storedPublic.toString("base64url") },
      format: "jwk",
    });
  } catch (err) {
    throw new KeyError(`secret key ${file}: not a usable Ed25519 key`, { cause: err });
  }
  const publicRaw = publicRawOf(createPublicKey(privateKey));
  if (!publicRaw.equals(storedPublic)) throw fail("damaged minisign secret key (public half does not match the seed)");
  return { keyId, privateKey, publicRaw };
}

// Used when neither file may be replaced: exclusive creation makes a concurrent keygen lose cleanly.
async function createPair(secretPath: string, pem: string, publicPath: string, pub: string): Promise<void> {
  for (const path of [secretPath, publicPath]) {
    if (await exists(path)) throw new KeyError(`${path} already exists (use --force to overwrite)`);
  }
  await writeNew(secretPath, pem, SECRET_MODE);
  try {
    await writeNew(publicPath, pub, PUBLIC_MODE);
  } catch (err) {
    await rm(secretPath, { force: true });
    throw err;
  }
}

// Used with force: both files are staged next to their targets and renamed into place; the old secret
// key is kept as a hard link until the public key is in place, so a failure restores the old pair.
async function replacePair(secretPath: string, pem: string, publicPath: string, pub: string): Promise<void> {
  const tag = `${process.pid}.${randomBytes(4).toString("hex")}`;
  const tmp = (path: string, what: string): string => join(dirname(path), `.${basename(path)}.${what}-${tag}`);
  const stagedSecret = tmp(secretPath, "new");
  const stagedPublic = tmp(publicPath, "new");
  const backup = tmp(secretPath, "old");
  try {
    await writeNew(stagedSecret, pem, SECRET_MODE);
    await writeNew(stagedPublic, pub, PUBLIC_MODE);
    let backedUp = false;
    try {
      await link(secretPath, backup);
      backedUp = true;
    } catch (err) {
      // No old key (ENOENT) needs no backup; a file system without hard links only loses the restore.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "EPERM" && code !== "ENOTSUP") {
        throw fsError(err, `secret key ${secretPath}`);
      }
    }
    try {
      await rename(stagedSecret, secretPath);
    } catch (err) {
      throw fsError(err, `secret key ${secretPath}`);
    }
    try {
      await rename(stagedPublic, publicPath);
    } catch (err) {
      if (backedUp) await rename(backup, secretPath).catch(() => undefined);
      else await rm(secretPath, { force: true });
      throw fsError(err, `public key ${publicPath}`);
    }
  } finally {
    await Promise.all([stagedSecret, stagedPublic, backup].map((p) => rm(p, { force: true })));
  }
}

// Created with its final mode so a secret key is never briefly readable by others; the fchmod covers a
// umask that would have removed bits from the public key's 0644.
async function writeNew(path: string, content: string, mode: number): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "wx", mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new KeyError(`${path} already exists (use --force to overwrite)`);
    throw fsError(err, `key file ${path}`);
  }
  try {
    await handle.chmod(mode);
    await handle.writeFile(content, "utf8");
    await handle.sync();
    await handle.close();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(path, { force: true });
    throw fsError(err, `key file ${path}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw fsError(err, `key file ${path}`);
  }
}

// Makes the new directory entries durable; not every file system lets a directory be fsynced.
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Durability is best effort here: the files themselves were already synced.
  }
}
