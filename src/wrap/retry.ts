// Retry with exponential backoff and full jitter, honouring a server's Retry-After; sleep is injectable for tests.
import { SourceError, UpdateMirrorError } from "../core/errors.js";

export type Sleep = (ms: number) => Promise<void>;
export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RetryPolicy {
  /** Tries in total, at least 1. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A Retry-After longer than this is not waited for: the caller fails over and cools the source down. */
  maxRetryAfterMs: number;
  sleep: Sleep;
  random: () => number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 3,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 60_000,
  sleep: realSleep,
  random: Math.random,
};

/** The delay before retry number `attempt` (1-based): full jitter over an exponential ceiling. */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(policy.random() * ceiling);
}

/** True for failures worth trying again on the same source (network trouble, not "not found" or bad bytes). */
export function isRetryable(err: unknown): boolean {
  return err instanceof UpdateMirrorError ? err.retryable : false;
}

/**
 * Runs `task` until it succeeds, fails with a non-retryable error, asks for a pause longer than
 * `maxRetryAfterMs`, or runs out of attempts; then rethrows the last error. `onRetry` hears about
 * each wait before it happens.
 */
export async function withRetry<T>(task: (attempt: number) => Promise<T>, policy: RetryPolicy, onRetry?: (attempt: number, delayMs: number, err: unknown) => void): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await task(attempt);
    } catch (err) {
      if (attempt >= policy.attempts || !isRetryable(err)) throw err;
      const asked = err instanceof SourceError ? err.retryAfterMs : undefined;
      if (asked !== undefined && asked > policy.maxRetryAfterMs) throw err;
      const delay = asked ?? backoffDelay(policy, attempt);
      onRetry?.(attempt, delay, err);
      await policy.sleep(delay);
    }
  }
}
