// Pure engine parts: the plan, deletion limits, selection and the retry policy.
import { describe, expect, it } from "vitest";
import { RefusedPlanError, SourceError, NotFoundError } from "../../src/core/errors.js";
import type { ManifestFile } from "../../src/core/manifest.js";
import { checkDeletions, parseMaxDelete, planSync } from "../../src/engine/plan.js";
import { createSelector } from "../../src/engine/select.js";
import { createRateLimiter, parseRate } from "../../src/wrap/bandwidth.js";
import { backoffDelay, DEFAULT_RETRY, type RetryPolicy, withRetry } from "../../src/wrap/retry.js";

const h = (c: string) => c.repeat(64);
const file = (path: string, c: string, size = 1): ManifestFile => ({ path, size, sha256: h(c) });

describe("planSync", () => {
  it("sorts files into add, update, remove and keep", () => {
    const plan = planSync([file("a", "1"), file("b", "2"), file("c", "3")], [file("a", "1"), file("b", "9", 5), { path: "d", size: 7 }]);
    expect(plan.add.map((f) => f.path)).toEqual(["d"]);
    expect(plan.update.map((f) => f.path)).toEqual(["b"]);
    expect(plan.remove.map((f) => f.path)).toEqual(["c"]);
    expect(plan.keep.map((f) => f.path)).toEqual(["a"]);
    expect(plan.downloadBytes).toBe(12);
  });
  it("treats a target without a hash as changed", () => {
    expect(planSync([file("a", "1")], [{ path: "a", size: 1 }]).update).toHaveLength(1);
  });
  it("carries the target's tags onto kept files", () => {
    const plan = planSync([file("a", "1")], [{ ...file("a", "1"), tags: { product: "p" } }]);
    expect(plan.keep[0]?.tags).toEqual({ product: "p" });
  });
});

describe("deletion limits", () => {
  it("parses counts and percentages", () => {
    expect(parseMaxDelete("25")).toEqual({ count: 25 });
    expect(parseMaxDelete("12.5%")).toEqual({ percent: 12.5 });
    expect(parseMaxDelete("101%")).toBeUndefined();
    expect(parseMaxDelete("many")).toBeUndefined();
  });
  it("refuses an empty upstream and a sharp shrink, allows within the limit", () => {
    const current = ["a", "b", "c", "d"].map((p) => file(p, "1"));
    expect(() => checkDeletions(planSync(current, []), 4, { percent: 50 }, "up")).toThrow(/up is empty: the plan removes 4 of 4/);
    expect(() => checkDeletions(planSync(current, [file("a", "1")]), 4, { percent: 50 }, "up")).toThrow(RefusedPlanError);
    expect(() => checkDeletions(planSync(current, [file("a", "1"), file("b", "1")]), 4, { percent: 50 }, "up")).not.toThrow();
    expect(() => checkDeletions(planSync(current, []), 4, { percent: 100 }, "up")).not.toThrow();
    expect(() => checkDeletions(planSync(current, [file("a", "1")]), 4, { count: 2 }, "up")).toThrow(/shrank sharply/);
  });
});

describe("selection", () => {
  it("combines include, exclude and tags", () => {
    const select = createSelector({ include: ["kes/**"], exclude: ["**/*.tmp"], tags: { platform: ["win-x64", "linux"] } });
    expect(select({ path: "kes/a.bin", tags: { platform: "linux" } })).toBe(true);
    expect(select({ path: "kes/a.tmp", tags: { platform: "linux" } })).toBe(false);
    expect(select({ path: "other/a.bin", tags: { platform: "linux" } })).toBe(false);
    expect(select({ path: "kes/a.bin", tags: { platform: "mac" } })).toBe(false);
    expect(select({ path: "kes/a.bin" })).toBe(false);
  });
});

describe("withRetry", () => {
  function policy(delays: number[]): RetryPolicy {
    return { ...DEFAULT_RETRY, attempts: 4, random: () => 0.5, sleep: async (ms) => void delays.push(ms) };
  }
  it("backs off exponentially with jitter, capped", () => {
    const p = { ...DEFAULT_RETRY, random: () => 1 };
    expect([1, 2, 3, 10].map((n) => backoffDelay(p, n))).toEqual([500, 1000, 2000, 30_000]);
  });
  it("retries retryable errors and honours Retry-After", async () => {
    const delays: number[] = [];
    let calls = 0;
    const result = await withRetry(async () => {
      calls += 1;
      if (calls === 1) throw new SourceError("flaky");
      if (calls === 2) throw new SourceError("busy", { retryAfterMs: 2000 });
      return "ok";
    }, policy(delays));
    expect(result).toBe("ok");
    expect(delays).toEqual([250, 2000]);
  });
  it("does not retry a missing file, nor wait for a very long Retry-After", async () => {
    const delays: number[] = [];
    let calls = 0;
    await expect(withRetry(async () => { calls += 1; throw new NotFoundError("gone"); }, policy(delays))).rejects.toThrow(NotFoundError);
    await expect(withRetry(async () => { calls += 1; throw new SourceError("later", { retryAfterMs: 3_600_000 }); }, policy(delays))).rejects.toThrow(/later/);
    expect(calls).toBe(2);
    expect(delays).toEqual([]);
  });
  it("gives up after the last attempt with the last error", async () => {
    const delays: number[] = [];
    await expect(withRetry(async (n) => { throw new SourceError(`try ${n}`); }, policy(delays))).rejects.toThrow("try 4");
    expect(delays).toHaveLength(3);
  });
});

describe("bandwidth cap", () => {
  it("paces bytes to the rate across callers, after a one-second burst", async () => {
    let now = 0;
    const slept: number[] = [];
    const limiter = createRateLimiter(1000, () => now, async (ms) => {
      slept.push(ms);
      now += ms;
    });
    await limiter.take(1000);
    expect(slept).toEqual([]);
    await Promise.all([limiter.take(500), limiter.take(500)]);
    expect(slept).toEqual([500, 500]);
    expect(now).toBe(1000);
  });

  it("parses rates", () => {
    expect(parseRate("500k")).toBe(512_000);
    expect(parseRate("10M")).toBe(10 * 1024 * 1024);
    expect(parseRate("1.5g")).toBe(Math.floor(1.5 * 1024 ** 3));
    expect(parseRate("123")).toBe(123);
    expect(parseRate("fast")).toBeUndefined();
    expect(parseRate("0")).toBeUndefined();
  });
});
