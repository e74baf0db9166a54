// pino logger for the CLI: JSON lines to a file or stderr, with every secret key redacted.
import { type Logger, pino } from "pino";
import { SECRET_KEYS } from "../config/secrets.js";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
export const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Redaction paths: each secret key at the top level and up to two objects deep. */
export const REDACT_PATHS: string[] = SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

/** Creates the logger; `file` appends JSON lines there (created if missing), otherwise to stderr. */
export function createLogger(options: { level: LogLevel; file?: string | undefined }): Logger {
  const destination = pino.destination({ dest: options.file ?? 2, sync: true, mkdir: true, append: true });
  return pino({ level: options.level, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, destination);
}
