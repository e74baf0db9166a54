// Bandwidth cap shared by every transfer of a run: a token bucket wrapped around Sources, whatever their kind.
import type { OpenedFile, OpenOptions, Source } from "../core/source.js";
import { realSleep, type Sleep } from "./retry.js";
import { parseByteSize } from "../core/size.js";

export interface RateLimiter {
  /** Resolves when `bytes` may pass; callers wait in turn, so the cap holds across parallel transfers. */
  take(bytes: number): Promise<void>;
}

/**
 * A token bucket refilled at `bytesPerSecond`, holding at most one second's worth, so a burst after
 * an idle spell is bounded too. `clock` and `sleep` are injectable for tests.
 */
export function createRateLimiter(bytesPerSecond: number, clock: () => number = () => performance.now(), sleep: Sleep = realSleep): RateLimiter {
  let tokens = bytesPerSecond;
  let last = clock();
  let queue: Promise<void> = Promise.resolve();
  const refill = () => {
    const now = clock();
    tokens = Math.min(bytesPerSecond, tokens + ((now - last) * bytesPerSecond) / 1000);
    last = now;
  };
  return {
    take(bytes) {
      const turn = queue.then(async () => {
        refill();
        tokens -= bytes;
        if (tokens < 0) {
          await sleep(Math.ceil((-tokens * 1000) / bytesPerSecond));
          refill();
        }
      });
      queue = turn;
      return turn;
    },
  };
}

async function* throttled(body: AsyncIterable<Uint8Array>, limiter: RateLimiter): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    await limiter.take(chunk.length);
    yield chunk;
  }
}

/** The same source, with every body it opens paced by `limiter`. */
export function limitSource(source: Source, limiter: RateLimiter): Source {
  return {
    label: source.label,
    capabilities: source.capabilities,
    probeManifest: (validator, options) => source.probeManifest(validator, options),
    list: (signal) => source.list(signal),
    async open(path: string, options?: OpenOptions): Promise<OpenedFile> {
      const opened = await source.open(path, options);
      return { ...opened, body: throttled(opened.body, limiter) };
    },
    close: () => source.close(),
  };
}

/** Parses "500k", "10M", "1.5G" (bytes per second, powers of 1024) or a plain byte count. Undefined when malformed or zero. */
export function parseRate(text: string): number | undefined {
  const value = parseByteSize(text);
  return value !== undefined && value > 0 ? value : undefined;
}
