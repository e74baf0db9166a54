// Tests for the tar header parser's pieces: numeric fields (octal, base-256), pax records, and the ustar check.
import { describe, expect, it } from "vitest";
import { looksLikeTar, parseNumber, parsePax } from "../../src/archive/tar-index.js";

const field = (text: string, width = 12) => Buffer.concat([Buffer.from(text, "latin1"), Buffer.alloc(Math.max(0, width - text.length))]).subarray(0, width);

describe("tar numeric fields", () => {
  it("reads octal with NUL or space padding, and empty as zero", () => {
    expect(parseNumber(field("0000644\0", 8))).toBe(0o644);
    expect(parseNumber(field("00000001750 "))).toBe(1000);
    expect(parseNumber(field("  1750\0"))).toBe(1000);
    expect(parseNumber(field(""))).toBe(0);
    expect(parseNumber(field("77777777777\0"))).toBe(8 ** 11 - 1);
  });

  it("reads GNU base-256 sizes (over 8 GiB) and refuses negative, malformed or unsafe values", () => {
    const big = Buffer.alloc(12);
    big[0] = 0x80;
    big.writeUIntBE(9_000_000_000, 6, 6);
    expect(parseNumber(big)).toBe(9_000_000_000);
    const negative = Buffer.alloc(12, 0xff);
    expect(parseNumber(negative)).toBeUndefined();
    const huge = Buffer.alloc(12, 0x7f);
    huge[0] = 0x80;
    expect(parseNumber(huge)).toBeUndefined();
    expect(parseNumber(field("1289"))).toBeUndefined();
    expect(parseNumber(field("-12"))).toBeUndefined();
  });
});

describe("pax records", () => {
  const record = (key: string, value: string) => {
    const body = ` ${key}=${value}\n`;
    let length = Buffer.byteLength(body) + 1;
    while (String(length).length + Buffer.byteLength(body) !== length) length += 1;
    return `${length}${body}`;
  };

  it("reads UTF-8 records, counting bytes not characters", () => {
    const data = Buffer.from(record("path", "ünïcødé/日本語.txt") + record("size", "9000000000") + record("mtime", "1700000000.5"));
    expect(parsePax(data)).toEqual(new Map([["path", "ünïcødé/日本語.txt"], ["size", "9000000000"], ["mtime", "1700000000.5"]]));
    expect(parsePax(Buffer.concat([Buffer.from(record("path", "a")), Buffer.alloc(20)]))).toEqual(new Map([["path", "a"]]));
  });

  it("refuses malformed records", () => {
    expect(parsePax(Buffer.from("13 path=abc\n"))).toBeUndefined(); // wrong length
    expect(parsePax(Buffer.from("11 path=abc\n"))).toBeUndefined(); // wrong length, no newline where it says
    expect(parsePax(Buffer.from("11 path=abcX"))).toBeUndefined(); // no newline
    expect(parsePax(Buffer.from("x path=a\n"))).toBeUndefined();
    expect(parsePax(Buffer.from("9 =value\n"))).toBeUndefined();
    expect(parsePax(Buffer.from("99 path=a\n"))).toBeUndefined();
  });
});

describe("tar detection", () => {
  it("needs the ustar magic and a valid checksum", () => {
    const block = Buffer.alloc(512);
    block.write("file.txt", 0);
    block.write("0000644\0", 100);
    block.write("00000000004\0", 124);
    block[156] = 0x30;
    block.write("ustar\x0000", 257, "latin1");
    block.fill(0x20, 148, 156);
    const sum = block.reduce((total, byte) => total + byte, 0);
    block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    expect(looksLikeTar(block)).toBe(true);
    const bad = Buffer.from(block);
    bad[0] = 0x46;
    expect(looksLikeTar(bad)).toBe(false);
    expect(looksLikeTar(block.subarray(0, 300))).toBe(false);
  });
});
