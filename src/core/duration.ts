// Human durations ("90s", "12h", "7d", "2w") for expiry and staleness settings.
import { UsageError } from "./errors.js";

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses "<integer><s|m|h|d|w>" into milliseconds. Throws UsageError naming `setting`. */
export function parseDuration(text: string, setting: string): number {
  const match = /^(\d+)([smhdw])$/.exec(text.trim());
  const unit = match?.[2] === undefined ? undefined : UNIT_MS[match[2]];
  if (!match || unit === undefined || Number(match[1]) <= 0) {
    throw new UsageError(`${setting}: ${JSON.stringify(text)} is not a duration (use e.g. 90m, 12h, 7d, 2w)`);
  }
  return Number(match[1]) * unit;
}

/** Parses an expiry given as a duration from `now` or as an ISO-8601 date. Throws UsageError naming `setting`. */
export function parseExpiry(text: string, setting: string, now: Date): Date {
  if (/^\d+[smhdw]$/.test(text.trim())) return new Date(now.getTime() + parseDuration(text, setting));
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || !Number.isFinite(ms)) {
    throw new UsageError(`${setting}: ${JSON.stringify(text)} is neither a duration (7d) nor a date (2027-01-31T00:00:00Z)`);
  }
  if (ms <= now.getTime()) throw new UsageError(`${setting}: ${text} is in the past`);
  return new Date(ms);
}
