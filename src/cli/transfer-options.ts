// The options every command that fetches from sources shares (sync, pull): selection, limits, network and credentials by reference.
import type { Argv } from "yargs";
import { UsageError } from "../core/errors.js";

/** A coerce function refusing anything but a whole number in [min, max], naming the flag. */
export function wholeNumber(name: string, min: number, max: number) {
  return (value: number | undefined) => {
    if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) throw new UsageError(`--${name}: must be a whole number from ${min} to ${max}, got ${value}`);
    return value;
  };
}

/** Adds selection, limit, network and credential options (their values are read by cli/sync-settings.ts). */
export function withTransferOptions<T>(yargs: Argv<T>) {
  return yargs
    .option("include", { type: "string", array: true, describe: "Only paths matching these globs" })
    .option("exclude", { type: "string", array: true, describe: "Leave out paths matching these globs" })
    .option("select", { type: "string", array: true, describe: "Only files tagged TAG=VALUE[,VALUE] (product, component, platform, language, version)" })
    .option("max-delete", { type: "string", describe: "Refuse a change deleting more files than this: a count or a percentage (default 50%)" })
    .option("concurrency", { type: "number", coerce: wholeNumber("concurrency", 1, 64), describe: "Files fetched at once, over at most twice as many connections per host (default 4)" })
    .option("retries", { type: "number", coerce: wholeNumber("retries", 0, 20), describe: "Retries per file and source (default 3)" })
    .option("bwlimit", { type: "string", describe: "Cap the run's transfer rate, bytes per second: 500k, 10M" })
    .option("bwlimit-schedule", {
      type: "string",
      array: true,
      describe: 'Caps by local time, first match wins, --bwlimit otherwise: "[DAYS ]HH:MM-HH:MM RATE", e.g. "mon-fri 08:00-18:00 2M" (RATE may be off)',
    })
    .option("connect-timeout", { type: "string", describe: "Connect timeout per source, e.g. 10s (default); pull also gives a source no longer to answer" })
    .option("proxy", { type: "string", describe: "HTTP proxy URL, e.g. http://proxy:3128 (default: HTTP_PROXY/HTTPS_PROXY)" })
    .option("proxy-user", { type: "string", describe: "Proxy user name" })
    .option("proxy-password-env", { type: "string", describe: "Environment variable holding the proxy password" })
    .option("proxy-password-file", { type: "string", describe: "File holding the proxy password" })
    .option("ftp-password-env", { type: "string", describe: "Environment variable holding the password of the user in ftp(s)://USER@host/ sources" })
    .option("ftp-password-file", { type: "string", describe: "File holding the password of the user in ftp(s)://USER@host/ sources" })
    .option("smb-password-env", { type: "string", describe: "Environment variable holding the password of the user in smb://[DOMAIN;]USER@host/share/ sources" })
    .option("smb-password-file", { type: "string", describe: "File holding the password of the user in smb://[DOMAIN;]USER@host/share/ sources" })
    .option("ca-file", { type: "string", describe: "PEM file of extra CA certificates to trust" })
    .option("user-agent", { type: "string", describe: "User-Agent sent to upstreams" })
    .option("allow-rollback", { type: "boolean", default: false, describe: "Accept a signed manifest older than one accepted before" })
    .option("allow-expired", { type: "boolean", default: false, describe: "Accept an expired manifest (e.g. while this machine's clock is wrong)" })
    .option("dry-run", { type: "boolean", default: false, describe: "Print what would change and how many bytes, change nothing" })
    .option("json", { type: "boolean", default: false, describe: "NDJSON events on stdout" })
    .option("verbose", { alias: "v", type: "boolean", default: false, describe: "A line per file" });
}
