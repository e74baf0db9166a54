// pino logger for the CLI: JSON lines to a rotated file or to stderr (short human lines when stderr is a terminal), with every secret key redacted.
import { hostname } from "node:os";
import { type DestinationStream, type Logger, pino } from "pino";
import { SECRET_KEYS } from "../config/secrets.js";
import { type LogFileOptions, openLogFile } from "./log-file.js";

/** Fields on every JSON line: a SIEM that collects from many hosts needs to know which one wrote it. */
export const LOG_BASE = { pid: process.pid, hostname: hostname() };

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
export const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Redaction paths: each secret key at the top level and up to two objects deep. */
export const REDACT_PATHS: string[] = SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

export interface LoggerOptions {
  level: LogLevel;
  /** Append JSON lines to this file (created if missing), rotated as `rotation` says; otherwise stderr. */
  file?: string | undefined;
  rotation?: LogFileOptions | undefined;
  /** Human lines instead of JSON on stderr; default: when stderr is a terminal. Ignored with `file`. */
  human?: boolean | undefined;
}

/**
 * Creates the logger. Every destination writes synchronously, so a crash never loses the last lines.
 * Throws NotFoundError or IoError naming the log file when `file` cannot be opened.
 */
export function createLogger(options: LoggerOptions): Logger {
  const redact = { paths: REDACT_PATHS, censor: "[redacted]" };
  if (options.file !== undefined) {
    return pino({ level: options.level, base: LOG_BASE, redact }, openLogFile(options.file, options.rotation));
  }
  const stderr = pino.destination({ dest: 2, sync: true });
  if (!(options.human ?? process.stderr.isTTY === true)) return pino({ level: options.level, base: LOG_BASE, redact }, stderr);
  const colors = process.stderr.hasColors?.() === true && process.env.NO_COLOR === undefined;
  const human: DestinationStream = { write: (line) => stderr.write(humanLine(line, colors)) };
  return pino({ level: options.level, base: undefined, redact }, human);
}

const LEVEL_NAMES: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
// ANSI colours by level: grey, grey, cyan, yellow, red, red.
const LEVEL_COLORS: Record<number, string> = { 10: "90", 20: "90", 30: "36", 40: "33", 50: "31", 60: "31" };
const LEFT_OUT = new Set(["level", "time", "msg", "pid", "hostname", "event"]);
/** Fields shown on a human line, and how long a value may be; the log file has everything. */
const MAX_FIELDS = 6;
const MAX_VALUE = 160;
// biome-ignore lint/suspicious/noControlCharactersInRegex: replacing control characters is the point (a newline is indented instead)
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

function shortValue(value: unknown): string {
  let text: string;
  if (typeof value === "string") text = /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  else if (value !== null && typeof value === "object" && typeof (value as { message?: unknown }).message === "string") {
    // A serialized error: its message (and its code) is what a person reads; the stack is in --log-file.
    const err = value as { message: string; code?: unknown };
    text = JSON.stringify(err.code === undefined ? err.message : `${err.message} (${String(err.code)})`);
  } else text = JSON.stringify(value) ?? String(value);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

/**
 * One pino JSON line as a short human line: local time, level, the event and message, and a few fields
 * as key=value (long values cut). A line that is not JSON is passed through. Never throws.
 */
export function humanLine(json: string, colors = false): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith("\n") ? json : `${json}\n`;
  }
  const time = typeof record.time === "number" ? new Date(record.time) : new Date();
  const hms = `${String(time.getHours()).padStart(2, "0")}:${String(time.getMinutes()).padStart(2, "0")}:${String(time.getSeconds()).padStart(2, "0")}`;
  const levelNumber = typeof record.level === "number" ? record.level : 30;
  const name = (LEVEL_NAMES[levelNumber] ?? String(record.level)).padEnd(5);
  const level = colors ? `\u001b[${LEVEL_COLORS[levelNumber] ?? "0"}m${name}\u001b[0m` : name;
  const event = typeof record.event === "string" ? record.event : undefined;
  const msg = typeof record.msg === "string" ? record.msg : "";
  const head = event === undefined || event === msg ? msg : msg === "" ? event : `${event}: ${msg}`;
  const fields = Object.entries(record).filter(([key, value]) => !LEFT_OUT.has(key) && value !== undefined);
  const shown = fields.slice(0, MAX_FIELDS).map(([key, value]) => `${key}=${shortValue(value)}`);
  if (fields.length > MAX_FIELDS) shown.push(`(+${fields.length - MAX_FIELDS} more)`);
  // Control characters from a remote name must not drive the terminal; a message's own lines are indented.
  const rest = [head, ...shown].filter((part) => part !== "").join(" ").replace(CONTROL, "?").replace(/\n/g, "\n    ");
  const text = `${hms} ${level} ${rest}`.trimEnd();
  return `${text}\n`;
}
