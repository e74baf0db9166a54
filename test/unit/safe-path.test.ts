// Every safe-path rule, with hostile inputs from real traversal and Windows-name attacks.
import { describe, expect, it } from "vitest";
import { UnsafePathError } from "../../src/core/errors.js";
import { assertSafePath, comparePaths, pathSetConflicts, safePathFromUrl, unsafePathReason } from "../../src/core/safe-path.js";

describe("unsafePathReason", () => {
  it.each([
    ["a.txt"],
    ["dir/sub/file.bin"],
    ["with space/and#hash%percent.dat"],
    ["ünïcödé/日本語.txt"],
    ["a..b/c...d.txt"],
    [".hidden/file"],
    ["CONSOLE/connect.txt"],
    ["COM10.txt"],
    [`${"d".repeat(200)}/${"f".repeat(255)}`],
  ])("accepts %j", (path) => {
    expect(unsafePathReason(path)).toBeUndefined();
  });

  it.each([
    ["", /empty/],
    ["../x", /'\.\.' segment/],
    ["a/../../x", /'\.\.' segment/],
    ["a/..", /'\.\.' segment/],
    ["a/./b", /'\.' segment/],
    ["./a", /'\.' segment/],
    ["/etc/passwd", /absolute/],
    ["C:/x", /drive letter/],
    ["c:x", /drive letter/],
    ["a\\b", /backslash/],
    ["..\\x", /backslash/],
    ["a//b", /empty segment/],
    ["a/", /empty segment/],
    ["a\u0000b", /NUL/],
    ["a\nb", /control/],
    ["a\u007fb", /control/],
    ["a\u0085b", /control/],
    ["CON", /reserved/],
    ["dir/con.txt", /reserved/],
    ["nul.tar.gz", /reserved/],
    ["Lpt1", /reserved/],
    ["com¹.log", /reserved/],
    ["AUX .txt", /reserved/],
    ["trailing.", /dot or space/],
    ["dir./x", /dot or space/],
    ["space /x", /dot or space/],
    ["ab:c", /Windows cannot store/],
    ["file.txt:stream", /Windows cannot store/],
    ["what?.txt", /Windows cannot store/],
    ["star*", /Windows cannot store/],
    ["pipe|x", /Windows cannot store/],
    ["e\u0301.txt", /NFC/],
    [".update-mirror/manifest.json", /reserved .update-mirror/],
    [".update-mirror", /reserved .update-mirror/],
    ["x".repeat(256), /longer than 255/],
    [`${"a/".repeat(600)}b`, /longer than 1024/],
  ])("refuses %j", (path, reason) => {
    expect(unsafePathReason(path)).toMatch(reason);
    expect(() => assertSafePath(path)).toThrow(UnsafePathError);
  });

  it("names the path and rule in the error", () => {
    try {
      assertSafePath("a/../b");
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(UnsafePathError);
      expect((err as UnsafePathError).code).toBe("E_UNSAFE_PATH");
      expect((err as Error).message).toContain('"a/../b"');
    }
  });
});

describe("safePathFromUrl", () => {
  it("decodes segments", () => {
    expect(safePathFromUrl("a%20b/%C3%BC.txt")).toBe("a b/ü.txt");
  });
  it.each([["%2e%2e/x"], ["a/%2E%2E/b"], ["%2e/x"], ["a%2fb"], ["a%5cb"], ["%2fetc/passwd"], ["bad%zz"], ["C%3a/x"], ["x%00y"]])(
    "refuses %j after decoding",
    (encoded) => {
      expect(() => safePathFromUrl(encoded)).toThrow(UnsafePathError);
    },
  );
});

describe("pathSetConflicts", () => {
  it("finds case-only duplicates", () => {
    expect(pathSetConflicts(["Readme.txt", "README.txt"])).toEqual([expect.stringMatching(/differs only in case/)]);
    expect(pathSetConflicts(["dir/Ä.bin", "dir/ä.bin"])).toHaveLength(1);
  });
  it("finds exact duplicates", () => {
    expect(pathSetConflicts(["a", "a"])).toEqual([expect.stringMatching(/listed twice/)]);
  });
  it("finds a file that is also a folder", () => {
    expect(pathSetConflicts(["a", "a/b"])).toEqual([expect.stringMatching(/also listed as a file/)]);
    expect(pathSetConflicts(["A", "a/b/c"])).toHaveLength(1);
  });
  it("accepts a clean set", () => {
    expect(pathSetConflicts(["a/b", "a/c", "ab", "b"])).toEqual([]);
  });
});

describe("comparePaths", () => {
  it("orders by UTF-8 bytes, not UTF-16 units", () => {
    // U+FF5E (3 UTF-8 bytes EF BD 9E) sorts before U+1F600 (F0 ...) in UTF-8 but after it in UTF-16.
    const paths = ["\u{1F600}", "\uFF5E", "a", "B"];
    expect([...paths].sort(comparePaths)).toEqual(["B", "a", "\uFF5E", "\u{1F600}"]);
  });
  it("agrees with comparing UTF-8 bytes on mixed samples", () => {
    const samples = ["a", "ab", "a/b", "a b", "\u00e9", "\uD7FF", "\uE000", "\uFFFD", "\u{10000}", "\u{1F600}x", "z", "", "\u{10FFFF}"];
    for (const a of samples) {
      for (const b of samples) {
        expect(Math.sign(comparePaths(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }
    }
  });
});
