// HTTP Basic authentication against a file of scrypt password hashes: the line format, hashing, constant-time checks and a short cache of recent successes.
import { createHmac, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { ConfigError } from "../core/errors.js";

/** scrypt cost parameters: N (a power of two), r and p. */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** 32 MiB and about 0.1 s per check: costly to guess offline, affordable once per client thanks to the cache. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 32768, r: 8, p: 1 };

/** A parsed `scrypt$N$r$p$salt$hash` value. */
export interface PasswordHash {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

const HASH_LINE = /^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/]{16,}={0,2})\$([A-Za-z0-9+/]{22,}={0,2})$/;
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const BAD_USER = /[:\u0000-\u001f\u007f]/;

function memoryOf(params: ScryptParams): number {
  return 128 * params.N * params.r * params.p;
}

function derive(password: string, salt: Buffer, length: number, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, length, { ...params, maxmem: memoryOf(params) + 16 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Hashes a password into the `scrypt$N$r$p$salt$hash` form auth files hold (salt and hash in standard base64). */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const hash = await derive(password, salt, 32, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

/** Parses a hash value; returns the problem when it is not one this server accepts. */
export function parsePasswordHash(value: string): PasswordHash | string {
  const match = HASH_LINE.exec(value);
  if (!match) return "not a scrypt$N$r$p$salt$hash value (make one with `update-mirror serve --hash-password USER`)";
  const params = { N: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  if (params.N < 1024 || params.N > 1 << 20 || (params.N & (params.N - 1)) !== 0) return "N must be a power of two from 1024 to 1048576";
  if (params.r < 1 || params.r > 32 || params.p < 1 || params.p > 16) return "r must be 1 to 32 and p 1 to 16";
  if (memoryOf(params) > MAX_SCRYPT_MEMORY) return "the parameters need more than 256 MiB per check";
  const salt = Buffer.from(match[4] as string, "base64");
  const hash = Buffer.from(match[5] as string, "base64");
  if (hash.length < 16 || hash.length > 64) return "the hash must be 16 to 64 bytes";
  return { params, salt, hash };
}

/**
 * Parses an auth file: one `user:scrypt$N$r$p$salt$hash` per line; blank lines and lines starting with
 * `#` are ignored. Throws ConfigError naming `file` and every bad line by number (never its content).
 */
export function parseAuthFile(text: string, file: string): Map<string, PasswordHash> {
  const users = new Map<string, PasswordHash>();
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const colon = line.indexOf(":");
    const user = colon < 0 ? "" : line.slice(0, colon);
    if (user === "" || BAD_USER.test(user)) {
      problems.push(`line ${i + 1}: expected user:scrypt$N$r$p$salt$hash with a user name free of ':' and control characters`);
      return;
    }
    if (users.has(user)) {
      problems.push(`line ${i + 1}: user ${JSON.stringify(user)} is listed twice`);
      return;
    }
    const parsed = parsePasswordHash(line.slice(colon + 1));
    if (typeof parsed === "string") problems.push(`line ${i + 1}: ${parsed}`);
    else users.set(user, parsed);
  });
  if (problems.length > 0) throw new ConfigError(`${file}: invalid auth file`, problems);
  if (users.size === 0) throw new ConfigError(`${file}: the auth file lists no users`);
  return users;
}

/** Checks `password` against a hash, in time that does not depend on where the bytes differ. */
export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const derived = await derive(password, stored.salt, stored.hash.length, stored.params);
  return timingSafeEqual(derived, stored.hash);
}

/** Decides who a request is from. */
export interface Authenticator {
  /** The WWW-Authenticate value a 401 carries. */
  readonly challenge: string;
  /** The user an Authorization header proves, or undefined (answer 401). Never logs or keeps the password. */
  authenticate(authorization: string | undefined): Promise<string | undefined>;
}

export interface AuthenticatorOptions {
  realm?: string;
  /** How long a checked user:password pair is accepted without another scrypt run (default 5 minutes). */
  cacheMs?: number;
  /** scrypt runs at once; more wait (default 2), so guessing cannot take every core. */
  concurrency?: number;
  now?: () => number;
}

const MAX_CACHED = 10_000;
const MAX_HEADER = 4096;

export function createAuthenticator(users: ReadonlyMap<string, PasswordHash>, options: AuthenticatorOptions = {}): Authenticator {
  const realm = (options.realm ?? "update-mirror").replace(/["\\]/g, "");
  const cacheMs = options.cacheMs ?? 5 * 60_000;
  const now = options.now ?? Date.now;
  // Successes are remembered by an HMAC of the pair under a key that never leaves this process.
  const key = randomBytes(32);
  const recent = new Map<string, number>();
  // Unknown users are checked against a throwaway hash, so a miss costs as long as a wrong password.
  const decoy: PasswordHash = { params: [...users.values()][0]?.params ?? DEFAULT_SCRYPT, salt: randomBytes(16), hash: randomBytes(32) };
  let running = 0;
  const waiting: (() => void)[] = [];

  async function limited<T>(task: () => Promise<T>): Promise<T> {
    if (running >= (options.concurrency ?? 2)) await new Promise<void>((resolve) => waiting.push(resolve));
    running += 1;
    try {
      return await task();
    } finally {
      running -= 1;
      waiting.shift()?.();
    }
  }

  return {
    challenge: `Basic realm="${realm}", charset="UTF-8"`,
    async authenticate(authorization) {
      if (authorization === undefined || authorization.length > MAX_HEADER) return undefined;
      const match = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(authorization);
      if (!match) return undefined;
      const decoded = Buffer.from(match[1] as string, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon <= 0) return undefined;
      const user = decoded.slice(0, colon);
      const password = decoded.slice(colon + 1);
      const token = createHmac("sha256", key).update(user).update("\0").update(password).digest("base64");
      const until = recent.get(token);
      if (until !== undefined && until > now()) return user;
      const stored = users.get(user);
      const ok = await limited(() => verifyPassword(password, stored ?? decoy));
      if (!ok || stored === undefined) return undefined;
      if (recent.size >= MAX_CACHED) recent.clear();
      recent.set(token, now() + cacheMs);
      return user;
    },
  };
}
