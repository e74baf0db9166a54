// Typed errors: every failure a user can cause has a class, a stable E_* code and a retryable flag.
// Exit codes are chosen from `code` in one place (cli/exit-codes.ts); nothing else decides them.

export type ErrorCode =
  | "E_STOPPED"
  | "E_USAGE"
  | "E_CONFIG"
  | "E_KEY"
  | "E_MANIFEST"
  | "E_SIGNATURE"
  | "E_INTEGRITY"
  | "E_UNSAFE_PATH"
  | "E_INPUT_REFUSED"
  | "E_NOT_FOUND"
  | "E_SOURCE"
  | "E_LOCKED"
  | "E_REFUSED_PLAN"
  | "E_PARTIAL"
  | "E_IO"
  | "E_HOOK";

export interface ErrorOptions {
  cause?: unknown;
  retryable?: boolean;
}

/** Base of every error this tool raises on purpose. Anything else reaching the CLI is a bug. */
export class UpdateMirrorError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** A flag or argument is wrong or missing. */
export class UsageError extends UpdateMirrorError {
  constructor(message: string, options?: ErrorOptions) {
    super("E_USAGE", message, options);
  }
}

/** A config file is unreadable or invalid; `problems` lists `dot.path: message` lines. */
export class ConfigError extends UpdateMirrorError {
  readonly problems: readonly string[];
  constructor(message: string, problems: readonly string[] = [], options?: ErrorOptions) {
    super("E_CONFIG", problems.length > 0 ? `${message}\n  ${problems.join("\n  ")}` : message, options);
    this.problems = problems;
  }
}

/** A key file is unreadable, malformed, or its passphrase is wrong or missing. */
export class KeyError extends UpdateMirrorError {
  constructor(message: string, options?: ErrorOptions) {
    super("E_KEY", message, options);
  }
}

/** A manifest could not be accepted (format, field, entry); the message names the entry at fault. */
export class ManifestError extends UpdateMirrorError {
  constructor(message: string, options?: ErrorOptions) {
    super("E_MANIFEST", message, options);
  }
}

/** A signature is missing, malformed, made by another key, or does not match the signed bytes. */
export class SignatureError extends UpdateMirrorError {
  constructor(message: string, options?: ErrorOptions) {
    super("E_SIGNATURE", message, options);
  }
}

/** Bytes on disk or on the wire do not match what the manifest says (size or hash). */
export class IntegrityError extends UpdateMirrorError {
  constructor(message: string, options?: ErrorOptions) {
    super("E_INTEGRITY", message, options);
  }
}

/** A relative path breaks a safe-path rule; `path` is the offending value, `rule` says which rule. */
export class UnsafePathError extends UpdateMirrorError {
  readonly path: string;
  readonly rule: string;
  constructor(path: string, rule: string) {
    super("E_UNSAFE_PATH", `unsafe path ${JSON.stringify(path)}: ${rule}`);
    this.path = path;
    this.rule = rule;
  }
}

/** Input the mirror cannot carry (symlinks, devices, unsafe names in a tree to index); lists every problem. */
export class InputRefusedError extends UpdateMirrorError {
  readonly problems: readonly string[];
  constructor(message: string, problems: readonly string[]) {
    const shown = problems.slice(0, 50);
    const more = problems.length > shown.length ? [`... and ${problems.length - shown.length} more`] : [];
    super("E_INPUT_REFUSED", `${message}\n  ${[...shown, ...more].join("\n  ")}`);
    this.problems = problems;
  }
}

/** A file or folder that should exist does not. */
export class NotFoundError extends UpdateMirrorError {
  constructor(message: string, options?: ErrorOptions) {
    super("E_NOT_FOUND", message, options);
  }
}

/**
 * An upstream or mirror source failed: unreachable, timed out, answered an error, or sent a bad body.
 * `retryAfterMs` is set when the server asked us to wait (HTTP 429/503 with Retry-After).
 */
export class SourceError extends UpdateMirrorError {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: ErrorOptions & { retryAfterMs?: number; retryable?: boolean } = {}) {
    super("E_SOURCE", message, { retryable: true, ...options });
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Another process holds the mirror's lock; the message names the holder. */
export class LockedError extends UpdateMirrorError {
  constructor(message: string) {
    super("E_LOCKED", message);
  }
}

/** A plan a safety rule refuses (empty or sharply shrunken upstream, rollback, expired manifest). */
export class RefusedPlanError extends UpdateMirrorError {
  constructor(message: string) {
    super("E_REFUSED_PLAN", message);
  }
}

/**
 * A run published what it could verify, but some files could not be fetched: they keep their previous
 * version (or stay absent) and nothing was deleted. The next run tries them again.
 */
export class PartialError extends UpdateMirrorError {
  constructor(message: string) {
    super("E_PARTIAL", message);
  }
}

/**
 * The run was asked to stop (SIGTERM, SIGINT) and did, after the files under way: nothing was
 * published or deleted, what was fetched stays staged for the next run.
 */
export class StoppedError extends UpdateMirrorError {
  constructor(message: string) {
    super("E_STOPPED", message);
  }
}

/** The local file system refused an operation (permission, disk full, read-only). */
export class IoError extends UpdateMirrorError {
  constructor(message: string, options?: ErrorOptions) {
    super("E_IO", message, options);
  }
}

/**
 * Turns a Node file-system error into one of ours, naming `what` (the file and its role).
 * Errors that are already ours pass through unchanged.
 */
export function fsError(err: unknown, what: string): UpdateMirrorError {
  if (err instanceof UpdateMirrorError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT" || code === "ENOTDIR") return new NotFoundError(`${what}: not found`, { cause: err });
  const reason = code === "ENOSPC" ? "no space left on device"
    : code === "EACCES" || code === "EPERM" ? "permission denied"
    : code === "EROFS" ? "read-only file system"
    : code === "EISDIR" ? "is a directory"
    : (err as Error | undefined)?.message ?? String(err);
  return new IoError(`${what}: ${reason}`, { cause: err, retryable: code === "EBUSY" || code === "EAGAIN" });
}

/** The job itself succeeded (or failed on its own), but a hook command the user configured failed. */
export class HookError extends UpdateMirrorError {
  constructor(message: string) {
    super("E_HOOK", message);
  }
}
