// A bandwidth timetable: caps by day and time of day (local time), e.g. slower during business hours.
import { UsageError } from "../core/errors.js";
import { parseByteSize } from "../core/size.js";

const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;

export interface BandwidthPeriod {
  /** Days (0 = Sunday) on which the period starts; every day when absent. */
  days?: ReadonlySet<number>;
  /** Minutes after local midnight; `to` <= `from` means the period runs past midnight. */
  from: number;
  to: number;
  /** Bytes per second, or undefined for no cap. */
  rate: number | undefined;
}

function minutes(text: string, entry: string): number {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  if (!m) throw new UsageError(`--bwlimit-schedule ${JSON.stringify(entry)}: ${JSON.stringify(text)} is not a time of day HH:MM`);
  return Number(m[1]) * 60 + Number(m[2]);
}

function dayIndex(name: string, entry: string): number {
  const i = DAYS.indexOf(name.toLowerCase() as (typeof DAYS)[number]);
  if (i < 0) throw new UsageError(`--bwlimit-schedule ${JSON.stringify(entry)}: ${JSON.stringify(name)} is not a day (${DAYS.join(", ")})`);
  return i;
}

/** "mon-fri", "sat,sun", "mon,wed-fri" as day numbers. */
function parseDays(text: string, entry: string): Set<number> {
  const days = new Set<number>();
  for (const part of text.split(",")) {
    const [first, last] = part.split("-");
    const start = dayIndex(first ?? "", entry);
    const end = last === undefined ? start : dayIndex(last, entry);
    for (let d = start; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === end) break;
    }
  }
  return days;
}

/**
 * Parses one period: `[DAYS ]HH:MM-HH:MM RATE`, e.g. `mon-fri 08:00-18:00 2M` or `22:00-06:00 off`.
 * Throws UsageError naming the entry.
 */
export function parseBandwidthPeriod(entry: string): BandwidthPeriod {
  const parts = entry.trim().split(/\s+/);
  if (parts.length !== 2 && parts.length !== 3) throw new UsageError(`--bwlimit-schedule ${JSON.stringify(entry)}: use [DAYS ]HH:MM-HH:MM RATE, e.g. "mon-fri 08:00-18:00 2M"`);
  const [daysText, span, rateText] = parts.length === 3 ? parts : [undefined, parts[0], parts[1]];
  const [fromText, toText] = (span ?? "").split("-");
  const from = minutes(fromText ?? "", entry);
  const to = minutes(toText ?? "", entry);
  let rate: number | undefined;
  if (!/^off$/i.test(rateText ?? "")) {
    rate = parseByteSize(rateText ?? "");
    if (rate === undefined || rate <= 0) throw new UsageError(`--bwlimit-schedule ${JSON.stringify(entry)}: ${JSON.stringify(rateText)} is not a rate like 500k or 10M, or "off"`);
  }
  return { ...(daysText !== undefined && { days: parseDays(daysText, entry) }), from, to, rate };
}

/** The period as `parseBandwidthPeriod` reads it, from the config's form (day names, HH:MM, rate or "off"). */
export function bandwidthPeriodText(period: { days?: readonly string[] | undefined; from: string; to: string; rate: string }): string {
  return `${period.days && period.days.length > 0 ? `${period.days.join(",")} ` : ""}${period.from}-${period.to} ${period.rate}`;
}

/** The cap at `date`: the first period that covers it, else `otherwise` (undefined: no cap). */
export function rateAt(periods: readonly BandwidthPeriod[], otherwise: number | undefined, date: Date): number | undefined {
  const minute = date.getHours() * 60 + date.getMinutes();
  const today = date.getDay();
  for (const p of periods) {
    const wraps = p.to <= p.from;
    let startDay: number | undefined;
    if (!wraps && minute >= p.from && minute < p.to) startDay = today;
    else if (wraps && minute >= p.from) startDay = today;
    else if (wraps && minute < p.to) startDay = (today + 6) % 7;
    if (startDay !== undefined && (p.days === undefined || p.days.has(startDay))) return p.rate;
  }
  return otherwise;
}
