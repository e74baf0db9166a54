// Durations, SHA256SUMS text, tag rules and log redaction: small pure parts with sharp edges.
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { REDACT_PATHS } from "../../src/cli/logger.js";
import { parseDuration, parseExpiry } from "../../src/core/duration.js";
import { UsageError } from "../../src/core/errors.js";
import { parseSha256Sums, renderSha256Sums, sha256SumsBytes } from "../../src/core/sha256sums.js";
import { byteSizeSetting, parseByteSize } from "../../src/core/size.js";
import { Utf8Builder } from "../../src/core/utf8-builder.js";
import { createTagger } from "../../src/mirror/tags.js";
import { pickRanges, planPublish } from "../../src/stores/publish-plan.js";

describe("durations", () => {
  it("parses units", () => {
    expect(parseDuration("90s", "x")).toBe(90_000);
    expect(parseDuration("7d", "x")).toBe(7 * 86_400_000);
    expect(parseDuration("2w", "x")).toBe(14 * 86_400_000);
  });
  it.each([["7"], ["d"], ["0d"], ["-1d"], ["1.5h"], ["7 days"]])("refuses %j naming the setting", (text) => {
    expect(() => parseDuration(text, "--warn")).toThrow(UsageError);
    expect(() => parseDuration(text, "--warn")).toThrow(/^--warn: /);
  });
  it("takes an expiry as a duration or a future date", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    expect(parseExpiry("30d", "--expires", now).toISOString()).toBe("2026-01-31T00:00:00.000Z");
    expect(parseExpiry("2026-06-01T00:00:00Z", "--expires", now).toISOString()).toBe("2026-06-01T00:00:00.000Z");
    expect(() => parseExpiry("2025-06-01", "--expires", now)).toThrow(/in the past/);
    expect(() => parseExpiry("tomorrow", "--expires", now)).toThrow(/neither a duration/);
  });
});

describe("SHA256SUMS", () => {
  const h = "ab".repeat(32);
  it("renders sha256sum's text format and parses it back", () => {
    const text = renderSha256Sums([{ path: "a b/c", sha256: h }, { path: "d", sha256: h }]);
    expect(text).toBe(`${h}  a b/c\n${h}  d\n`);
    const { sums, badLines } = parseSha256Sums(text);
    expect(badLines).toEqual([]);
    expect(sums.get("a b/c")).toBe(h);
  });
  it("gives the same text as bytes", () => {
    const files = [{ path: "a b/c", sha256: h }, { path: "ü/€😀", sha256: h }];
    expect(sha256SumsBytes(files).toString("utf8")).toBe(renderSha256Sums(files));
    expect(sha256SumsBytes([]).length).toBe(0);
  });
  it("reports malformed and repeated lines by number", () => {
    const { badLines } = parseSha256Sums(`${h}  a\nnot a line\n${h}  a\n${h} *b\n`);
    expect(badLines).toEqual([2, 3]);
  });
});

describe("tag rules", () => {
  it("applies every matching rule in order, later ones winning per key", () => {
    const tag = createTagger([
      { match: "kes/**", set: { product: "kes", platform: "any" } },
      { match: ["kes/win/**", "kes/*/win/**"], set: { platform: "win" } },
      { match: "**/.hidden", set: { component: "dot" } },
    ]);
    expect(tag("kes/win/a.bin")).toEqual({ product: "kes", platform: "win" });
    expect(tag("kes/x/win/a.bin")).toEqual({ product: "kes", platform: "win" });
    expect(tag("kes/lin/a.bin")).toEqual({ product: "kes", platform: "any" });
    expect(tag("other/.hidden")).toEqual({ component: "dot" });
    expect(tag("other/file")).toBeUndefined();
  });
});

describe("log redaction", () => {
  it("never writes a secret value, at any depth the paths cover", () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const log = pino({ redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, sink);
    log.info({ password: "p1", source: { url: "http://h/", password: "p2", auth: { token: "t3" } }, proxy: { passphrase: "p4" } }, "x");
    const out = lines.join("");
    for (const secret of ["p1", "p2", "t3", "p4"]) expect(out).not.toContain(`"${secret}"`);
    expect(out).toContain("[redacted]");
  });
});

describe("byte sizes", () => {
  it("reads binary units in every spelling people use, and names the setting when malformed", () => {
    expect(parseByteSize("65536")).toBe(65536);
    expect(parseByteSize("512k")).toBe(512 * 1024);
    expect(parseByteSize("4G")).toBe(4 * 1024 ** 3);
    expect(parseByteSize("4GiB")).toBe(4 * 1024 ** 3);
    expect(parseByteSize("700 MB")).toBe(700 * 1024 ** 2);
    expect(parseByteSize("1.5T")).toBe(1.5 * 1024 ** 4);
    expect(parseByteSize("0")).toBe(0);
    for (const bad of ["", "-1", "4X", "G", "4 G B"]) expect(parseByteSize(bad)).toBeUndefined();
    expect(() => byteSizeSetting("lots", "--split-size")).toThrow(/--split-size: "lots" is not a size/);
  });
});

describe("Utf8Builder", () => {
  it("grows past a short estimate and keeps multi-byte text whole", () => {
    const out = new Utf8Builder(1);
    const parts = ["abc", "ü€😀", "x".repeat(1000), ""];
    for (const p of parts) out.put(p);
    expect(out.bytes().toString("utf8")).toBe(parts.join(""));
  });
});

describe("planPublish", () => {
  const f = (path: string, sha: string) => ({ path, size: 1, sha256: sha.repeat(64) });
  it("places new and changed files, removes and retains what goes, keeps the rest", () => {
    const prev = [f("a", "1"), f("b", "2"), f("c", "3"), f("e", "5")];
    const next = [f("b", "2"), f("c", "4"), f("d", "6"), f("f", "7")];
    const plan = planPublish(prev, next);
    expect(plan).toEqual({
      place: [[1, 4]],
      remove: ["a", "e"],
      retain: [
        { path: "c", sha256: "3".repeat(64) },
        { path: "a", sha256: "1".repeat(64) },
        { path: "e", sha256: "5".repeat(64) },
      ],
    });
  });
  it("names the files to place as index ranges into the next list, picked back as the entries themselves", () => {
    const prev = [f("a", "1"), f("b", "2"), f("c", "3"), f("d", "4"), f("e", "5")];
    const next = [f("a", "1"), f("b", "X"), f("c", "3"), f("d", "Y"), f("e", "Z"), f("g", "7")];
    const { place } = planPublish(prev, next);
    expect(place).toEqual([
      [1, 2],
      [3, 6],
    ]);
    const picked = pickRanges(next, place);
    expect(picked.map((p) => p.path)).toEqual(["b", "d", "e", "g"]);
    expect(picked[0]).toBe(next[1]);
    expect(pickRanges(next, [])).toEqual([]);
  });
  it("handles an empty side", () => {
    expect(planPublish([], [f("a", "1")]).place).toEqual([[0, 1]]);
    expect(planPublish([f("a", "1")], [])).toEqual({ place: [], remove: ["a"], retain: [{ path: "a", sha256: "1".repeat(64) }] });
  });
  it("refuses files out of order rather than deleting listed ones", () => {
    expect(() => planPublish([f("a", "1")], [f("b", "2"), f("a", "1")])).toThrow(/out of order/);
  });
});
