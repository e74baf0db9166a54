// Fetching one file into the store: skip what is staged, resume partials, retry, and fail over source by source.
import { createHash } from "node:crypto";
import { IntegrityError, IoError, SourceError, UpdateMirrorError } from "../core/errors.js";
import type { Source } from "../core/source.js";
import type { MirrorState, Store } from "../core/store.js";
import { type RetryPolicy, withRetry } from "../wrap/retry.js";
import type { Emit } from "./events.js";
import type { TargetFile } from "./plan.js";

// A source that failed this many files in a row is treated as down, so a dead server costs a few
// files' retries rather than every remaining file's.
const MAX_FAILURES_IN_ROW = 5;

export interface FetchContext {
  store: Store;
  /** Sources in the order to try: the chosen one first. */
  sources: readonly Source[];
  /** Sources given up on for this run (failed probe, cool-down, or too many failed files in a row). */
  down: Set<Source>;
  /** Files in a row each source failed; reset by a success. */
  failuresInRow: Map<Source, number>;
  retry: RetryPolicy;
  /** Fetches under way by staging key: files with the same content share one partial, so they take turns. */
  inFlight: Map<string, Promise<unknown>>;
  state: MirrorState;
  now: () => Date;
  emit: Emit;
  /** Content the committed manifest already holds under another path: publish places it from there. */
  held?: ReadonlySet<string>;
}

export interface Fetched {
  path: string;
  size: number;
  sha256: string;
  /** Bytes actually transferred (0 when the content was already staged). */
  transferred: number;
}

/**
 * The staging key of a file. With a known hash the content names itself, so a resume can never mix
 * versions. Without one, the key covers path, size and mtime, so a changed upstream file starts over.
 */
function stagingKey(file: TargetFile): string {
  if (file.sha256 !== undefined) return file.sha256;
  return `p-${createHash("sha256").update(`${file.path}\0${file.size}\0${file.mtimeMs ?? ""}`).digest("hex")}`;
}

async function* counted(body: AsyncIterable<Uint8Array>, path: string, emit: Emit, tally: { bytes: number }): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    tally.bytes += chunk.length;
    emit({ type: "file:progress", path, bytes: chunk.length });
    yield chunk;
  }
}

/**
 * Brings one file into the store's staging. Throws the last source's error when every source failed
 * (IntegrityError when the bytes were wrong, SourceError or NotFoundError otherwise).
 */
export async function fetchFile(file: TargetFile, ctx: FetchContext): Promise<Fetched> {
  // Two paths with the same content would write one partial at once (and the second rename would
  // find it gone), so each waits for the previous fetch of its key and then reuses its object.
  const key = stagingKey(file);
  const previous = ctx.inFlight.get(key);
  const run = (async () => {
    if (previous) await previous.catch(() => undefined);
    return fetchOnce(file, key, ctx);
  })();
  ctx.inFlight.set(key, run);
  try {
    return await run;
  } finally {
    if (ctx.inFlight.get(key) === run) ctx.inFlight.delete(key);
  }
}

async function fetchOnce(file: TargetFile, key: string, ctx: FetchContext): Promise<Fetched> {
  if (file.sha256 !== undefined && (ctx.held?.has(file.sha256) || (await ctx.store.hasObject(file.sha256, file.size)))) {
    ctx.emit({ type: "file:done", path: file.path, size: file.size, source: "staged", reused: true });
    return { path: file.path, size: file.size, sha256: file.sha256, transferred: 0 };
  }
  const tally = { bytes: 0 };
  let lastError: unknown;
  let first = true;
  for (const source of ctx.sources) {
    if (ctx.down.has(source)) continue;
    // Without a known hash, bytes from two sources must never be spliced together.
    const mayResume = source.capabilities.rangeReads && (file.sha256 !== undefined || first);
    first = false;
    try {
      const result = await withRetry(
        async () => {
          const partial = mayResume ? await ctx.store.partial(key) : { size: 0 };
          const offset = partial.size < file.size ? partial.size : 0;
          const opened = await source.open(file.path, {
            offset,
            expectedSize: file.size,
            ...(file.sha256 !== undefined && { sha256: file.sha256 }),
            ...(offset > 0 && partial.validator !== undefined && { ifRange: partial.validator }),
          });
          ctx.emit({ type: "file:start", path: file.path, size: file.size, source: source.label, offset: opened.offset });
          try {
            return await ctx.store.receive(key, counted(opened.body, file.path, ctx.emit, tally), {
              size: file.size,
              append: opened.offset > 0,
              ...(file.sha256 !== undefined && { sha256: file.sha256 }),
              ...(opened.validator !== undefined && { validator: opened.validator }),
            });
          } catch (err) {
            // Wrong bytes after a resume may come from the partial (another source, an older run):
            // the store has dropped it, so one more try from byte 0 tells whether this source is bad.
            if (err instanceof IntegrityError && !err.retryable && opened.offset > 0) {
              throw new IntegrityError(`${err.message} (after resuming at byte ${opened.offset})`, { cause: err, retryable: true });
            }
            throw err;
          }
        },
        ctx.retry,
        (attempt, delayMs, err) => {
          ctx.emit({ type: "file:retry", path: file.path, source: source.label, attempt, delayMs, reason: (err as Error).message });
        },
      );
      ctx.failuresInRow.set(source, 0);
      ctx.emit({ type: "file:done", path: file.path, size: result.size, source: source.label, reused: false });
      return { path: file.path, size: result.size, sha256: result.sha256, transferred: tally.bytes };
    } catch (err) {
      if (!(err instanceof UpdateMirrorError)) throw err;
      if (err instanceof IoError) {
        // Our own disk failed (full, read-only): another source cannot help.
        ctx.emit({ type: "file:failed", path: file.path, reason: err.message });
        throw err;
      }
      lastError = err;
      if (err instanceof SourceError) {
        if (err.retryAfterMs !== undefined) {
          const until = new Date(ctx.now().getTime() + err.retryAfterMs).toISOString();
          ctx.state.sources[source.label] = { ...ctx.state.sources[source.label], coolDownUntil: until };
          ctx.down.add(source);
        }
        const inRow = (ctx.failuresInRow.get(source) ?? 0) + 1;
        ctx.failuresInRow.set(source, inRow);
        if (inRow >= MAX_FAILURES_IN_ROW) ctx.down.add(source);
      }
      ctx.emit({ type: "file:failover", path: file.path, from: source.label, reason: err.message });
    }
  }
  lastError ??= new SourceError(`${file.path}: no source left to try (every source is down or cooling down)`);
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  ctx.emit({ type: "file:failed", path: file.path, reason });
  throw lastError;
}
