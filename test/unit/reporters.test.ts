// Reporters: the plain lines a run prints, and the progress bar drawn on a terminal.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { plainLines } from "../../src/cli/reporters/plain.js";
import { createProgressBar } from "../../src/cli/reporters/progress.js";
import type { RunSummary } from "../../src/engine/events.js";

const summary: RunSummary = { result: "updated", version: 4, previousVersion: 3, previousUpstreamVersion: 8, source: "https://up/", upstreamVersion: 9, added: 1, updated: 2, removed: 3, failed: 0, bytes: 2_500_000, elapsedMs: 1000 };

describe("plain lines", () => {
  it("summarise a run in one line", () => {
    expect(plainLines({ type: "run:done", summary }, false)).toEqual(["published version 4 (was 3) from https://up/: 1 added, 2 updated, 3 removed; 2.50 MB fetched in 1.00 s (2.50 MB/s)"]);
    expect(plainLines({ type: "run:done", summary: { ...summary, result: "unchanged" } }, false)[0]).toMatch(/^up to date at version 4 \(source https:\/\/up\/\)/);
    expect(plainLines({ type: "run:done", summary: { ...summary, result: "dry-run" } }, false)[0]).toMatch(/^dry run: would apply 1 added, 2 updated, 3 removed; nothing was changed$/);
  });
  it("show failures always and per-file lines only when verbose", () => {
    expect(plainLines({ type: "file:failed", path: "a", reason: "boom" }, false)).toEqual(["FAILED a: boom"]);
    expect(plainLines({ type: "file:done", path: "a", size: 10, source: "s", reused: false }, false)).toEqual([]);
    expect(plainLines({ type: "file:done", path: "a", size: 10, source: "s", reused: false }, true)).toEqual(["fetched a (10 B from s)"]);
  });
});

describe("progress bar", () => {
  it("draws bytes, files and percentage on a terminal and clears at the end", () => {
    let out = "";
    const stream = new Writable({
      write(chunk, _enc, cb) {
        out += String(chunk);
        cb();
      },
    }) as unknown as NodeJS.WriteStream;
    Object.assign(stream, { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
    const bar = createProgressBar(stream);
    bar.onEvent({ type: "plan:ready", add: 2, update: 0, remove: 0, keep: 0, downloadBytes: 2000, files: [] });
    bar.onEvent({ type: "file:progress", path: "a", bytes: 1000 });
    bar.onEvent({ type: "file:done", path: "a", size: 1000, source: "s", reused: false });
    bar.log("a line above the bar");
    bar.onEvent({ type: "file:progress", path: "b", bytes: 1000 });
    bar.onEvent({ type: "file:done", path: "b", size: 1000, source: "s", reused: false });
    bar.onEvent({ type: "publish:start", version: 1 });
    expect(out).toContain("a line above the bar\n");
    expect(out).toMatch(/50% \| 1\/2 files \| 1.00 kB of 2.00 kB/);
    expect(out).toMatch(/100% \| 2\/2 files/);
  });
});
