// What the logger writes: short human lines for a terminal, redacted JSON lines to a rotated file, and the log flags' checks.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { rotatedLogFiles } from "../../src/cli/log-file.js";
import { createLogger, humanLine } from "../../src/cli/logger.js";
import { type GlobalArgs, logRotation } from "../../src/cli/runtime.js";
import { UsageError } from "../../src/core/errors.js";
import { scratchDir } from "../support/cli.js";

describe("human lines on a terminal", () => {
  const time = new Date(2026, 0, 2, 3, 4, 5, 678).getTime();

  it("shows the local time, the level, the event and message, and a few fields", () => {
    const json = JSON.stringify({ level: 40, time, pid: 1, event: "file:failed", msg: "file:failed", path: "a b/c.bin", attempt: 2, source: "https://up.example/" });
    expect(humanLine(json)).toBe('03:04:05 WARN  file:failed path="a b/c.bin" attempt=2 source=https://up.example/\n');
  });

  it("shows an error by its message and code, not its stack, and cuts long values", () => {
    const json = JSON.stringify({ level: 50, time, msg: "run failed", err: { type: "SourceError", message: "HTTP 500 from up", code: "E_SOURCE", stack: "SourceError: ...\n    at x" }, list: "z".repeat(400) });
    const out = humanLine(json);
    expect(out).toMatch(/^03:04:05 ERROR run failed err="HTTP 500 from up \(E_SOURCE\)" list=z{159}…\n$/);
    expect(out).not.toContain("at x");
    expect(out.length).toBeLessThan(250);
  });

  it("lists at most six fields, and says how many more the log file has", () => {
    const record: Record<string, unknown> = { level: 30, time, msg: "plan:ready" };
    for (let i = 0; i < 9; i++) record[`f${i}`] = i;
    expect(humanLine(JSON.stringify(record))).toBe("03:04:05 INFO  plan:ready f0=0 f1=1 f2=2 f3=3 f4=4 f5=5 (+3 more)\n");
  });

  it("keeps control characters from driving the terminal, indents a message's own lines, and colours only the level", () => {
    const json = JSON.stringify({ level: 30, time, msg: "two\nlines \u001b[2J", name: "evil\u001b]0;title\u0007" });
    expect(humanLine(json)).toBe('03:04:05 INFO  two\n    lines ?[2J name=evil?]0;title?\n');
    expect(humanLine(json, true)).toContain("\u001b[36mINFO \u001b[0m");
    expect(humanLine(json, true).split("\u001b")).toHaveLength(3);
  });

  it("passes a line that is not JSON through", () => {
    expect(humanLine("plain text")).toBe("plain text\n");
  });
});

describe("log flags", () => {
  const args = (extra: Partial<GlobalArgs>): GlobalArgs => ({ "log-level": "warn", ...extra });

  it("rotates at 10M keeping 5 by default, only with --log-file", () => {
    expect(logRotation(args({}))).toBeUndefined();
    expect(logRotation(args({ "log-file": "x.log" }))).toEqual({ maxBytes: 10 * 1024 * 1024, keep: 5, maxAgeMs: undefined });
    expect(logRotation(args({ "log-file": "x.log", "log-max-size": "64k", "log-keep": 2, "log-max-age": "30d" }))).toEqual({ maxBytes: 65536, keep: 2, maxAgeMs: 30 * 86_400_000 });
  });

  it("turns rotation off with 0 or off", () => {
    for (const off of ["0", "off", "OFF"]) expect(logRotation(args({ "log-file": "x.log", "log-max-size": off }))?.maxBytes).toBeUndefined();
    expect(logRotation(args({ "log-file": "x.log", "log-max-size": "off", "log-max-age": "7d" }))).toEqual({ maxBytes: undefined, keep: 5, maxAgeMs: 7 * 86_400_000 });
  });

  it.each([
    [{ "log-max-size": "5M" }, /^--log-max-size applies to --log-file/],
    [{ "log-keep": 3 }, /^--log-keep applies to --log-file/],
    [{ "log-file": "x", "log-max-size": "ten" }, /^--log-max-size: "ten" is not a size/],
    [{ "log-file": "x", "log-max-size": "100" }, /^--log-max-size: "100" is less than 1k/],
    [{ "log-file": "x", "log-keep": 0 }, /^--log-keep: must be a whole number from 1 to 1000/],
    [{ "log-file": "x", "log-keep": 1.5 }, /^--log-keep: must be a whole number/],
    [{ "log-file": "x", "log-max-age": "a month" }, /^--log-max-age: "a month" is not a duration/],
    [{ "log-file": "x", "log-max-size": "off", "log-keep": 3 }, /^--log-keep: nothing is rotated/],
  ] as [Partial<GlobalArgs>, RegExp][])("refuses %j naming the flag", (extra, message) => {
    expect(() => logRotation(args(extra))).toThrow(UsageError);
    expect(() => logRotation(args(extra))).toThrow(message);
  });
});

describe("the logger on a file", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await scratchDir("log-format"));
  });
  afterEach(() => cleanup());

  it("writes redacted JSON lines, whole, rotated by size", () => {
    const file = join(dir, "um.log");
    const logger = createLogger({ level: "debug", file, rotation: { maxBytes: 2048, keep: 50 } });
    for (let i = 0; i < 100; i++) logger.debug({ i, proxy: { password: "pw-SECRET-1" }, headers: { authorization: "Basic c2VjcmV0" } }, "tick");
    const files = [...rotatedLogFiles(file), file];
    expect(files.length).toBeGreaterThan(3);
    const records = files.flatMap((f) => readFileSync(f, "utf8").split("\n").filter((l) => l !== "")).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => r.i)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(records[0]).toMatchObject({ level: 20, pid: process.pid, msg: "tick", proxy: { password: "[redacted]" }, headers: { authorization: "[redacted]" } });
    for (const f of files) expect(readFileSync(f, "utf8")).not.toMatch(/SECRET|c2VjcmV0/);
  });
});
