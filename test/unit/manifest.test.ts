// Manifest v1: canonical bytes, and every rejection the reader must make, each naming the entry at fault.
import { describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/core/canonical-json.js";
import { ManifestError } from "../../src/core/errors.js";
import { formatTimestamp, isTimestamp, MANIFEST_FORMAT, type Manifest, parseManifest, serializeManifest } from "../../src/core/manifest.js";

const H = "a".repeat(64);
const H2 = "0123456789abcdef".repeat(4);

function sample(): Manifest {
  return {
    format: MANIFEST_FORMAT,
    version: 7,
    created: "2026-11-28T10:00:00Z",
    expires: "2026-12-28T10:00:00Z",
    origin: { generator: "update-mirror/0.1.0", upstream: "https://updates.example/av/", upstreamVersion: 41 },
    files: [
      { path: "a/b.bin", size: 10, sha256: H, tags: { product: "kes", platform: "win-x64" } },
      { path: "c.txt", size: 0, sha256: H2 },
    ],
  };
}

/** Serializes a hand-edited document canonically, so only the edit under test is wrong. */
function bytesOf(doc: unknown): Buffer {
  return Buffer.from(`${canonicalJson(doc as never)}\n`);
}

function rejects(doc: unknown, message: RegExp): void {
  expect(() => parseManifest(bytesOf(doc), "test.json")).toThrow(ManifestError);
  expect(() => parseManifest(bytesOf(doc), "test.json")).toThrow(message);
}

describe("serializeManifest", () => {
  it("round-trips through parseManifest", () => {
    const bytes = serializeManifest(sample());
    expect(parseManifest(bytes, "x")).toEqual(sample());
  });

  it("is canonical: sorted keys, no whitespace, one newline, same bytes for the same content", () => {
    const text = serializeManifest(sample()).toString("utf8");
    expect(text.endsWith("}\n")).toBe(true);
    expect(text.indexOf("\n")).toBe(text.length - 1);
    expect(text.startsWith('{"created":"2026-11-28T10:00:00Z","expires":')).toBe(true);
    expect(text).toContain('{"path":"a/b.bin","sha256":"');
    const shuffled = { ...sample(), files: sample().files.map((f) => ({ tags: f.tags, sha256: f.sha256, size: f.size, path: f.path })) };
    expect(serializeManifest(shuffled)).toEqual(serializeManifest(sample()));
  });

  it("writes file entries exactly as the general canonical serializer would", () => {
    const m = sample();
    m.files.push({ path: "ü/\"quoted\" \u2028.bin", size: 2 ** 40, sha256: H, tags: { version: "1.2", language: "en", component: "c" } });
    m.origin.upstream = 'https://x/"files":[]';
    const general = `${canonicalJson({ ...m, files: m.files.map((f) => ({ ...f })) } as never)}\n`;
    expect(serializeManifest(m).toString("utf8")).toBe(general);
  });

  it("escapes strings as RFC 8785 does", () => {
    expect(canonicalJson({ b: "é\u2028\u0001\"\\/", a: 1 })).toBe('{"a":1,"b":"é\u2028\\u0001\\"\\\\/"}');
  });
});

describe("parseManifest rejects", () => {
  it("an unknown format", () => rejects({ ...sample(), format: "update-mirror-manifest-v2" }, /unknown format "update-mirror-manifest-v2"/));
  it("a missing format", () => rejects({ ...sample(), format: undefined }, /unknown format/));
  it("an unknown top-level field", () => rejects({ ...sample(), extra: 1 }, /unknown field "extra"/));
  it("a zero version", () => rejects({ ...sample(), version: 0 }, /version: must be a positive integer/));
  it("a non-integer version", () => {
    const text = serializeManifest(sample()).toString().replace('"version":7', '"version":7.5');
    expect(() => parseManifest(Buffer.from(text), "t")).toThrow(/version: must be a positive integer/);
  });
  it("a local-time created", () => rejects({ ...sample(), created: "2026-11-28T10:00:00+01:00" }, /created: must be a UTC timestamp/));
  it("an impossible date", () => rejects({ ...sample(), created: "2026-02-30T10:00:00Z" }, /created/));
  it("a bad expires", () => rejects({ ...sample(), expires: "soon" }, /expires/));
  it("a negative size", () => {
    const m = sample();
    (m.files[0] as { size: number }).size = -1;
    rejects(m, /files\[0\] \("a\/b.bin"\)\.size: must be a non-negative integer/);
  });
  it("a fractional size", () => {
    const text = serializeManifest(sample()).toString().replace('"size":10', '"size":10.5');
    expect(() => parseManifest(Buffer.from(text), "t")).toThrow(/files\[0\].*size/);
  });
  it("a size as a string", () => {
    const m = sample() as unknown as { files: { size: unknown }[] };
    (m.files[0] as { size: unknown }).size = "10";
    rejects(m, /size: must be a non-negative integer, got "10"/);
  });
  it("an upper-case hash", () => {
    const m = sample();
    (m.files[0] as { sha256: string }).sha256 = H.toUpperCase();
    rejects(m, /files\[0\].*sha256: must be 64 lowercase hex/);
  });
  it("a short hash", () => {
    const m = sample();
    (m.files[1] as { sha256: string }).sha256 = "abc";
    rejects(m, /files\[1\] \("c.txt"\)\.sha256/);
  });
  it.each([["../evil"], ["/etc/passwd"], ["C:/x"], ["CON"], ["a/./b"], ["a\\b"], ["x."], [".update-mirror/manifest.json"]])("the unsafe path %j", (path) => {
    const m = sample();
    m.files = [{ path, size: 1, sha256: H }];
    rejects(m, /files\[0\].*\.path: /);
  });
  it("a %2e%2e path is taken literally and stays safe", () => {
    const m = sample();
    m.files = [{ path: "%2e%2e/x", size: 1, sha256: H }];
    expect(parseManifest(bytesOf(m), "t").files[0]?.path).toBe("%2e%2e/x");
  });
  it("duplicate paths", () => {
    const m = sample();
    m.files = [{ path: "a", size: 1, sha256: H }, { path: "a", size: 1, sha256: H }];
    rejects(m, /files\[1\] \("a"\): duplicate path/);
  });
  it("case-only duplicates", () => {
    const m = sample();
    m.files = [{ path: "A.txt", size: 1, sha256: H }, { path: "a.txt", size: 1, sha256: H }];
    rejects(m, /differs only in case/);
  });
  it("a file that is also a folder", () => {
    const m = sample();
    m.files = [{ path: "a", size: 1, sha256: H }, { path: "a/b", size: 1, sha256: H }];
    rejects(m, /also listed as a file/);
  });
  it("files out of order", () => {
    const m = sample();
    m.files = [{ path: "b", size: 1, sha256: H }, { path: "a", size: 1, sha256: H }];
    rejects(m, /files\[1\] \("a"\): out of order/);
  });
  it("an unknown file field", () => {
    const m = sample() as unknown as { files: Record<string, unknown>[] };
    (m.files[0] as Record<string, unknown>).mode = 420;
    rejects(m, /files\[0\].*unknown field "mode"/);
  });
  it("an unknown tag", () => {
    const m = sample() as unknown as { files: { tags?: Record<string, unknown> }[] };
    (m.files[0] as { tags: Record<string, unknown> }).tags = { colour: "red" };
    rejects(m, /tags: unknown field "colour"/);
  });
  it("an empty tag value", () => {
    const m = sample();
    (m.files[0] as { tags: Record<string, string> }).tags = { product: "" };
    rejects(m, /tags\.product/);
  });
  it("a missing origin", () => rejects({ ...sample(), origin: undefined }, /origin: must be an object/));
  it("files that are not an array", () => rejects({ ...sample(), files: {} }, /files: must be an array/));
  it("non-canonical bytes (pretty-printed)", () => {
    const pretty = Buffer.from(JSON.stringify(JSON.parse(serializeManifest(sample()).toString()), null, 2));
    expect(() => parseManifest(pretty, "t")).toThrow(/not in canonical form/);
  });
  it("duplicate JSON keys, which parsers disagree on", () => {
    const text = serializeManifest(sample()).toString().replace('"version":7', '"version":1,"version":7');
    expect(() => parseManifest(Buffer.from(text), "t")).toThrow(/not in canonical form/);
  });
  it("a byte-order mark", () => {
    expect(() => parseManifest(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), serializeManifest(sample())]), "t")).toThrow(ManifestError);
  });
  it("invalid UTF-8", () => {
    expect(() => parseManifest(Buffer.from([0x7b, 0xff, 0x7d]), "t")).toThrow(/not valid UTF-8/);
  });
  it("not JSON", () => {
    expect(() => parseManifest(Buffer.from("<html>403 Forbidden</html>"), "t")).toThrow(/not valid JSON/);
  });
  it("an overlong manifest, before parsing it", () => {
    const big = Buffer.alloc(2048, 0x20);
    expect(() => parseManifest(big, "big.json", 1024)).toThrow(/2048 bytes, more than the limit of 1024/);
  });
  it("and names the source in every message", () => {
    expect(() => parseManifest(Buffer.from("[]"), "mirror/.update-mirror/manifest.json")).toThrow(/^mirror\/\.update-mirror\/manifest\.json: /);
  });
});

describe("timestamps", () => {
  it("formats UTC whole seconds", () => {
    expect(formatTimestamp(new Date("2026-01-02T03:04:05.678Z"))).toBe("2026-01-02T03:04:05Z");
  });
  it("accepts only real instants in the exact form", () => {
    expect(isTimestamp("2026-01-02T03:04:05Z")).toBe(true);
    expect(isTimestamp("2026-01-02T03:04:05.000Z")).toBe(false);
    expect(isTimestamp("2026-13-02T03:04:05Z")).toBe(false);
    expect(isTimestamp("2026-01-02 03:04:05Z")).toBe(false);
  });
});
