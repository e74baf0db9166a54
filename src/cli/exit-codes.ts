// The one table that turns outcomes into process exit codes (documented in README.md, checked by a test).
import type { ErrorCode } from "../core/errors.js";

export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  integrity: 3,
  refused: 4,
  partial: 5,
  locked: 6,
  network: 7,
  io: 8,
  hook: 9,
  stopped: 10,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const BY_ERROR_CODE: Record<ErrorCode, ExitCode> = {
  E_USAGE: EXIT.usage,
  E_CONFIG: EXIT.usage,
  E_KEY: EXIT.usage,
  E_NOT_FOUND: EXIT.usage,
  E_MANIFEST: EXIT.integrity,
  E_SIGNATURE: EXIT.integrity,
  E_INTEGRITY: EXIT.integrity,
  E_UNSAFE_PATH: EXIT.refused,
  E_INPUT_REFUSED: EXIT.refused,
  E_SOURCE: EXIT.network,
  E_LOCKED: EXIT.locked,
  E_REFUSED_PLAN: EXIT.refused,
  E_PARTIAL: EXIT.partial,
  E_IO: EXIT.io,
  E_HOOK: EXIT.hook,
  E_STOPPED: EXIT.stopped,
};

/** Exit code for one of our error codes. */
export function exitCodeFor(code: ErrorCode): ExitCode {
  return BY_ERROR_CODE[code];
}
