// Merges sync settings from defaults, the config file and flags (flags win) and resolves keys and secrets.
import { readFile } from "node:fs/promises";
import type { Config } from "../config/schema.js";
import { resolveSecret, type SecretRef } from "../config/secrets.js";
import { parseDuration } from "../core/duration.js";
import { ConfigError, fsError, UsageError } from "../core/errors.js";
import { TAG_KEYS, type TagKey } from "../core/manifest.js";
import { loadPublicKey, loadSecretKey } from "../crypto/keys.js";
import type { PublicKey } from "../crypto/minisign.js";
import type { MaxDelete } from "../engine/plan.js";
import { parseMaxDelete } from "../engine/plan.js";
import type { Selection } from "../engine/select.js";
import { DEFAULT_HTTP_OPTIONS, type HttpOptions } from "../net/http-options.js";
import { createRateLimiter, parseRate, type RateLimiter } from "../wrap/bandwidth.js";
import { type BandwidthPeriod, parseBandwidthPeriod, rateAt } from "../wrap/bandwidth-schedule.js";
import type { SecretKey } from "../crypto/keys.js";
import { VERSION } from "../version.js";

/**
 * The connections a run may open to one host, per file fetched at once. undici lets a connection
 * take its next request only a full turn of the event loop after a response ends, so a fetch that
 * starts at once (a small file just written) would wait for that turn with one connection per
 * lane: ~10% slower over 40,000 small files. With a spare per lane it goes out at once, and the
 * number of connections still has a bound the user sets (rclone opened ~300 for the same tree).
 */
const CONNECTIONS_PER_FETCH = 2;

export interface SyncFlags {
  source?: string[] | undefined;
  dest?: string | undefined;
  trust?: string[] | undefined;
  "sign-key"?: string | undefined;
  "passphrase-env"?: string | undefined;
  "passphrase-file"?: string | undefined;
  include?: string[] | undefined;
  exclude?: string[] | undefined;
  select?: string[] | undefined;
  concurrency?: number | undefined;
  retries?: number | undefined;
  "max-delete"?: string | undefined;
  "keep-generations"?: number | undefined;
  expires?: string | undefined;
  proxy?: string | undefined;
  "proxy-user"?: string | undefined;
  "proxy-password-env"?: string | undefined;
  "proxy-password-file"?: string | undefined;
  "ftp-password-env"?: string | undefined;
  "ftp-password-file"?: string | undefined;
  "smb-password-env"?: string | undefined;
  "smb-password-file"?: string | undefined;
  "ca-file"?: string | undefined;
  "user-agent"?: string | undefined;
  "connect-timeout"?: string | undefined;
  bwlimit?: string | undefined;
  "bwlimit-schedule"?: string[] | undefined;
}

export interface SyncSettings {
  sources: string[];
  dest: string;
  trustKeys: PublicKey[];
  signingKey?: SecretKey;
  selection: Selection;
  concurrency: number;
  retries: number;
  maxDelete: MaxDelete;
  keepGenerations: number;
  expiresInMs?: number;
  /** Bytes per second for the whole run, when capped. */
  bandwidth?: number;
  /** Caps by time of day; `bandwidth` applies outside them. */
  bandwidthSchedule?: BandwidthPeriod[];
  http: HttpOptions;
  /** For ftp(s):// sources naming a user (ftp://USER@host/); by reference, like the proxy password. */
  ftp?: { password: string };
  /** For smb:// sources and an smb:// dest naming a user (smb://[DOMAIN;]USER@host/share/); by reference, like the proxy password. */
  smb?: { password: string };
}

/** Parses `--select product=kes,kav` flags into tag selections. Throws UsageError naming the flag. */
export function parseSelect(items: readonly string[]): Selection["tags"] {
  const tags: Partial<Record<TagKey, string[]>> = {};
  for (const item of items) {
    const match = /^([a-z]+)=(.+)$/.exec(item);
    const key = match?.[1] as TagKey | undefined;
    if (!match || key === undefined || !TAG_KEYS.includes(key)) {
      throw new UsageError(`--select ${JSON.stringify(item)}: use TAG=VALUE[,VALUE] with TAG one of ${TAG_KEYS.join(", ")}`);
    }
    tags[key] = [...(tags[key] ?? []), ...(match[2] ?? "").split(",").filter((v) => v !== "")];
  }
  return tags;
}

/** A secret reference from flags when either flag is given, else from the config file's setting. */
function secretFrom(env: string | undefined, file: string | undefined, configured: { passwordEnv?: string | undefined; passwordFile?: string | undefined } | undefined): SecretRef {
  return env !== undefined || file !== undefined ? { env, file } : { env: configured?.passwordEnv, file: configured?.passwordFile };
}

/** Builds the proxy URL and Proxy-Authorization header; the password never leaves this function in text. */
async function proxySetting(flags: SyncFlags, config: Config): Promise<HttpOptions["proxy"]> {
  const fromFlag = flags.proxy;
  const cfg = config.network.proxy;
  const spec = fromFlag ?? cfg?.url;
  if (spec === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw new UsageError(`--proxy: ${JSON.stringify(spec)} is not a URL like http://proxy:3128`);
  }
  if (url.password !== "") throw new UsageError("--proxy: put no password in the URL; use --proxy-password-env or --proxy-password-file");
  const username = flags["proxy-user"] ?? (url.username !== "" ? decodeURIComponent(url.username) : cfg?.username);
  const password = await resolveSecret(
    secretFrom(flags["proxy-password-env"], flags["proxy-password-file"], cfg),
    "proxy password",
  );
  url.username = "";
  url.password = "";
  if (username === undefined) {
    if (password !== undefined) throw new UsageError("proxy password given without a user name (--proxy-user)");
    return { url: url.href };
  }
  return { url: url.href, authorization: `Basic ${Buffer.from(`${username}:${password ?? ""}`).toString("base64")}` };
}

/** Resolves every sync setting. Throws UsageError/ConfigError/KeyError naming the flag, setting or file at fault. */
export async function resolveSyncSettings(flags: SyncFlags, config: Config): Promise<SyncSettings> {
  const sync = config.sync;
  const sources = flags.source && flags.source.length > 0 ? flags.source : (sync.sources ?? []);
  if (sources.length === 0) throw new UsageError("give at least one --source (or sync.sources in the config file)");
  const dest = flags.dest ?? sync.dest;
  if (dest === undefined) throw new UsageError("give --dest (or sync.dest in the config file)");
  const trustFiles = flags.trust && flags.trust.length > 0 ? flags.trust : (sync.trust ?? []);
  const trustKeys = await Promise.all(trustFiles.map((f) => loadPublicKey(f)));
  const keyFile = flags["sign-key"] ?? sync.signKey;
  let signingKey: SecretKey | undefined;
  if (keyFile !== undefined) {
    const passphrase = await resolveSecret(
      secretFrom(flags["passphrase-env"], flags["passphrase-file"], { passwordEnv: sync.signKeyPassphraseEnv, passwordFile: sync.signKeyPassphraseFile }),
      "sign key passphrase",
    );
    signingKey = await loadSecretKey(keyFile, passphrase);
  }
  const maxDeleteText = flags["max-delete"] ?? sync.maxDelete ?? "50%";
  const maxDelete = parseMaxDelete(maxDeleteText);
  if (!maxDelete) throw new UsageError(`--max-delete: ${JSON.stringify(maxDeleteText)} is not a count (25) or a percentage (10%)`);
  const expires = flags.expires ?? sync.expires;
  const net = config.network;
  let ca: string | undefined;
  const caFile = flags["ca-file"] ?? net.caFile;
  if (caFile !== undefined) {
    try {
      ca = await readFile(caFile, "utf8");
    } catch (err) {
      throw new ConfigError(`CA file: ${fsError(err, caFile).message}`);
    }
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError(`CA file ${caFile}: no PEM certificate in it`);
  }
  const proxy = await proxySetting(flags, config);
  const ftpPassword = await resolveSecret(secretFrom(flags["ftp-password-env"], flags["ftp-password-file"], net.ftp), "FTP password");
  if (ftpPassword !== undefined && !sources.some((s) => /^ftps?:\/\/[^/?#@]+@/i.test(s))) {
    throw new UsageError("FTP password given, but no ftp:// or ftps:// source names a user (ftp://USER@host/path/)");
  }
  const smbPassword = await resolveSecret(secretFrom(flags["smb-password-env"], flags["smb-password-file"], net.smb), "SMB password");
  if (smbPassword !== undefined && ![...sources, dest].some((s) => /^smb:\/\/[^/?#@]+@/i.test(s))) {
    throw new UsageError("SMB password given, but no smb:// source or destination names a user (smb://[DOMAIN;]USER@host/share/path)");
  }
  const connect = flags["connect-timeout"] ?? net.connectTimeout;
  const concurrency = flags.concurrency ?? sync.concurrency ?? 4;
  const http: HttpOptions = {
    ...DEFAULT_HTTP_OPTIONS,
    userAgent: flags["user-agent"] ?? net.userAgent ?? `update-mirror/${VERSION}`,
    ...(connect !== undefined && { connectTimeoutMs: parseDuration(connect, "--connect-timeout") }),
    ...(net.idleTimeout !== undefined && { idleTimeoutMs: parseDuration(net.idleTimeout, "network.idleTimeout") }),
    ...(net.totalTimeout !== undefined && { totalTimeoutMs: parseDuration(net.totalTimeout, "network.totalTimeout") }),
    ...(ca !== undefined && { ca }),
    ...(proxy !== undefined && { proxy }),
    connectionsPerHost: CONNECTIONS_PER_FETCH * concurrency,
  };
  const rateText = flags.bwlimit ?? sync.bandwidth;
  const bandwidth = rateText === undefined ? undefined : parseRate(rateText);
  if (rateText !== undefined && bandwidth === undefined) throw new UsageError(`--bwlimit: ${JSON.stringify(rateText)} is not a rate like 500k or 10M (bytes per second)`);
  const schedule = (flags["bwlimit-schedule"] ?? []).map(parseBandwidthPeriod);
  const settings: SyncSettings = {
    sources,
    dest,
    trustKeys,
    selection: {
      include: flags.include ?? sync.include ?? [],
      exclude: flags.exclude ?? sync.exclude ?? [],
      tags: flags.select && flags.select.length > 0 ? parseSelect(flags.select) : (sync.select ?? {}),
    },
    concurrency,
    retries: flags.retries ?? sync.retries ?? 3,
    maxDelete,
    keepGenerations: flags["keep-generations"] ?? sync.keepGenerations ?? 3,
    http,
    ...(signingKey && { signingKey }),
    ...(expires !== undefined && { expiresInMs: parseDuration(expires, "--expires") }),
    ...(bandwidth !== undefined && { bandwidth }),
    ...(schedule.length > 0 && { bandwidthSchedule: schedule }),
    ...(ftpPassword !== undefined && { ftp: { password: ftpPassword } }),
    ...(smbPassword !== undefined && { smb: { password: smbPassword } }),
  };
  return settings;
}

/** The run's rate limiter: a fixed cap, a timetable over it, or none. */
export function rateLimiterFor(settings: Pick<SyncSettings, "bandwidth" | "bandwidthSchedule">): RateLimiter | undefined {
  const { bandwidth, bandwidthSchedule } = settings;
  if (bandwidthSchedule) return createRateLimiter(() => rateAt(bandwidthSchedule, bandwidth, new Date()));
  return bandwidth === undefined ? undefined : createRateLimiter(bandwidth);
}
