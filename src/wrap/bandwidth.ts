// Bandwidth cap shared by every transfer of a run: a token bucket wrapped around Sources, whatever their kind.
import type { OpenedFile, OpenOptions, Source } from "../core/source.js";
import { realSleep, type Sleep } from "./retry.js";
import { parseByteSize } from "../core/size.js";

export interface RateLimiter {
  /** Resolves when `bytes` may pass; callers wait in turn, so the cap holds across parallel transfers. */
  take(bytes: number): Promise<void>;
}

/**
 * A token bucket refilled at the current rate, holding at most one second's worth, so a burst after
 * an idle spell is bounded too. The rate is a number or, for a timetable, a function asked at every
 * take (undefined: no cap at the moment). `clock` and `sleep` are injectable for tests.
 */
export function createRateLimiter(rate: number | (() => number | undefined), clock: () => number = () => performance.now(), sleep: Sleep = realSleep): RateLimiter {
  const current = typeof rate === "number" ? () => rate : rate;
  let tokens = current() ?? 0;
  let last = clock();
  let queue: Promise<void> = Promise.resolve();
  const refill = (bytesPerSecond: number) => {
    const now = clock();
    tokens = Math.min(bytesPerSecond, tokens + ((now - last) * bytesPerSecond) / 1000);
    last = now;
  };
  return {
    take(bytes) {
      const turn = queue.then(async () => {
        const bytesPerSecond = current();
        if (bytesPerSecond === undefined) {
          // No cap now: the bucket starts full when a capped period begins.
          last = clock();
          tokens = Number.POSITIVE_INFINITY;
          return;
        }
        refill(bytesPerSecond);
        tokens -= bytes;
        if (tokens < 0) {
          await sleep(Math.ceil((-tokens * 1000) / bytesPerSecond));
          refill(bytesPerSecond);
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
