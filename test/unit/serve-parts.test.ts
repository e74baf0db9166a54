// The pure parts of `serve`: request-target decoding, ranges, conditionals, CIDR matching, password hashes, listings, health.
import { describe, expect, it } from "vitest";
import { ConfigError, UsageError } from "../../src/core/errors.js";
import { parseAddress, parseAllowList } from "../../src/serve/allow-list.js";
import { createAuthenticator, hashPassword, parseAuthFile, parsePasswordHash, type ScryptParams, verifyPassword } from "../../src/serve/auth.js";
import { evaluatePreconditions, httpDate, ifRangeAllows, parseHttpDate } from "../../src/serve/conditional.js";
import { healthOf } from "../../src/serve/health.js";
import { escapeHtml, type ListingEntry, renderHtmlListing, renderJsonListing } from "../../src/serve/listing.js";
import { contentTypeFor } from "../../src/serve/media-types.js";
import { encodePath, parseRequestTarget } from "../../src/serve/paths.js";
import { parseRange } from "../../src/serve/ranges.js";
import type { Snapshot } from "../../src/serve/snapshot.js";

// Cheap parameters keep the tests fast; the format and the checks are the same at any cost.
const FAST: ScryptParams = { N: 1024, r: 8, p: 1 };

function pathOf(target: string): string | undefined {
  const parsed = parseRequestTarget(target);
  return parsed.ok ? parsed.value.path : undefined;
}

function refusal(target: string): string | undefined {
  const parsed = parseRequestTarget(target);
  return parsed.ok ? undefined : parsed.reason;
}

describe("request targets", () => {
  it("decodes each segment exactly once and keeps the query apart", () => {
    expect(parseRequestTarget("/")).toEqual({ ok: true, value: { path: "", slash: true, query: "" } });
    expect(parseRequestTarget("/a/b/?format=json")).toEqual({ ok: true, value: { path: "a/b", slash: true, query: "format=json" } });
    expect(parseRequestTarget("/docs/read%20me%20%231%20(100%25).txt")).toEqual({ ok: true, value: { path: "docs/read me #1 (100%).txt", slash: false, query: "" } });
    expect(pathOf("/%C3%BCn%C3%AFc%C3%B6d%C3%A9/%E6%97%A5.txt")).toBe("ünïcödé/日.txt");
    // %252e decodes once to the literal name "%2e", a harmless ordinary name.
    expect(pathOf("/%252e%252e/x")).toBe("%2e%2e/x");
    expect(pathOf("http://mirror:8080/a/b")).toBe("a/b");
    expect(pathOf("/.update-mirror/by-hash/sha256/00")).toBe(".update-mirror/by-hash/sha256/00");
  });

  it("refuses every traversal encoding and malformed input", () => {
    const hostile = [
      "/../secret",
      "/a/../../secret",
      "/a/./b",
      "/%2e%2e/secret",
      "/%2E%2E/secret",
      "/a/%2e%2e/%2e%2e/secret",
      "/..%2fsecret",
      "/..%2Fsecret",
      "/a%2f..%2f..%2fsecret",
      "/..%5csecret",
      "/a\\..\\secret",
      "/a/%00b",
      "/a%00.txt",
      "/%c0%ae%c0%ae/secret",
      "/%c0%af",
      "/%e0%80%ae%e0%80%ae/secret",
      "/%ed%a0%80",
      "/%ff",
      "/%2",
      "/%zz",
      "/a//b",
      "//etc/passwd",
      "/a#b",
      "/a b",
      "/a%01b",
      "/CON",
      "/a/nul.txt",
      "/a:b",
      "/.update-mirror/../secret",
      "*",
      "",
      "secret",
    ];
    for (const target of hostile) expect(refusal(target), target).toBeDefined();
    expect(refusal("/%c0%ae%c0%ae/secret")).toMatch(/UTF-8/);
    expect(refusal("/..%2fsecret")).toMatch(/encoded '\/'/);
  });

  it("encodes paths for URLs segment by segment", () => {
    expect(encodePath("docs/read me #1 (100%).txt")).toBe("docs/read%20me%20%231%20(100%25).txt");
    expect(encodePath("")).toBe("");
    for (const path of ["a/b c/d#e", "ünï/日本.txt", "100%/x?y"]) expect(pathOf(`/${encodePath(path)}`)).toBe(path.includes("?") ? undefined : path);
  });
});

describe("ranges", () => {
  it("answers single ranges, suffixes and open ends, clamped to the size", () => {
    expect(parseRange(undefined, 100)).toEqual({ kind: "none" });
    expect(parseRange("bytes=0-9", 100)).toEqual({ kind: "single", start: 0, end: 9 });
    expect(parseRange("bytes=90-", 100)).toEqual({ kind: "single", start: 90, end: 99 });
    expect(parseRange("bytes=50-500", 100)).toEqual({ kind: "single", start: 50, end: 99 });
    expect(parseRange("bytes=-10", 100)).toEqual({ kind: "single", start: 90, end: 99 });
    expect(parseRange("bytes=-1000", 100)).toEqual({ kind: "single", start: 0, end: 99 });
    expect(parseRange("Bytes = 0-0", 100)).toEqual({ kind: "single", start: 0, end: 0 });
    expect(parseRange("bytes=99999999999999999999-", 100)).toEqual({ kind: "unsatisfiable" });
  });

  it("says unsatisfiable when nothing overlaps, and ignores what is malformed", () => {
    expect(parseRange("bytes=100-", 100)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=-0", 100)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=0-", 0)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=-5", 0)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=200-300,400-", 100)).toEqual({ kind: "unsatisfiable" });
    for (const bad of ["bytes=5-2", "bytes=-", "bytes=a-b", "bytes=1-2-3", "items=0-1", "bytes", "bytes=0x10-"]) expect(parseRange(bad, 100), bad).toEqual({ kind: "none" });
    expect(parseRange(`bytes=${Array.from({ length: 100 }, (_, i) => `${i}-${i}`).join(",")}`, 1000)).toEqual({ kind: "none" });
  });

  it("answers several ranges with the whole body", () => {
    expect(parseRange("bytes=0-9,20-29", 100)).toEqual({ kind: "multiple" });
    expect(parseRange("bytes=0-9, 500-600", 100)).toEqual({ kind: "multiple" });
    expect(parseRange("bytes=0-9,", 100)).toEqual({ kind: "single", start: 0, end: 9 });
  });
});

describe("conditional requests", () => {
  const etag = '"sha256-abc"';
  const lastModifiedMs = Date.parse("2026-01-02T03:04:05Z");
  const v = { etag, lastModifiedMs };

  it("gives 304 for a matching If-None-Match (weak comparison, lists, *) and ignores If-Modified-Since then", () => {
    expect(evaluatePreconditions({ "if-none-match": etag }, v)).toBe("not-modified");
    expect(evaluatePreconditions({ "if-none-match": `W/"x", ${etag}` }, v)).toBe("not-modified");
    expect(evaluatePreconditions({ "if-none-match": `W/${etag}` }, v)).toBe("not-modified");
    expect(evaluatePreconditions({ "if-none-match": "*" }, v)).toBe("not-modified");
    expect(evaluatePreconditions({ "if-none-match": '"sha256-other"' }, v)).toBe("proceed");
    expect(evaluatePreconditions({ "if-none-match": '"sha256-other"', "if-modified-since": httpDate(lastModifiedMs + 60_000) }, v)).toBe("proceed");
  });

  it("compares If-Modified-Since by whole seconds and ignores bad dates", () => {
    expect(evaluatePreconditions({ "if-modified-since": httpDate(lastModifiedMs) }, v)).toBe("not-modified");
    expect(evaluatePreconditions({ "if-modified-since": httpDate(lastModifiedMs + 999) }, { etag, lastModifiedMs: lastModifiedMs + 500 })).toBe("not-modified");
    expect(evaluatePreconditions({ "if-modified-since": httpDate(lastModifiedMs - 1000) }, v)).toBe("proceed");
    expect(evaluatePreconditions({ "if-modified-since": "yesterday-ish" }, v)).toBe("proceed");
  });

  it("fails If-Match and If-Unmodified-Since with 412", () => {
    expect(evaluatePreconditions({ "if-match": etag }, v)).toBe("proceed");
    expect(evaluatePreconditions({ "if-match": `W/${etag}` }, v)).toBe("failed");
    expect(evaluatePreconditions({ "if-match": '"other"' }, v)).toBe("failed");
    expect(evaluatePreconditions({ "if-unmodified-since": httpDate(lastModifiedMs - 1000) }, v)).toBe("failed");
    expect(evaluatePreconditions({ "if-unmodified-since": httpDate(lastModifiedMs) }, v)).toBe("proceed");
  });

  it("honours If-Range only for our strong ETag or exactly our Last-Modified", () => {
    const now = lastModifiedMs + 10_000;
    expect(ifRangeAllows({}, v, now)).toBe(true);
    expect(ifRangeAllows({ "if-range": etag }, v, now)).toBe(true);
    expect(ifRangeAllows({ "if-range": `W/${etag}` }, v, now)).toBe(false);
    expect(ifRangeAllows({ "if-range": '"sha256-other"' }, v, now)).toBe(false);
    expect(ifRangeAllows({ "if-range": httpDate(lastModifiedMs) }, v, now)).toBe(true);
    expect(ifRangeAllows({ "if-range": httpDate(lastModifiedMs + 1000) }, v, now)).toBe(false);
    // A Last-Modified within the last second is weak: the file may change again within that second.
    expect(ifRangeAllows({ "if-range": httpDate(lastModifiedMs) }, v, lastModifiedMs + 200)).toBe(false);
    expect(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT")).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
  });
});

describe("allow-list", () => {
  it("matches IPv4 and IPv6 blocks, with IPv4-mapped addresses as IPv4", () => {
    const allow = parseAllowList(["10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1", "::ffff:172.16.0.0/108"]);
    for (const ok of ["10.1.2.3", "::ffff:10.200.0.1", "192.168.1.7", "::ffff:192.168.1.7", "fd12:3456::1", "::1", "172.16.5.5", "::ffff:172.31.255.255"]) expect(allow.allows(ok), ok).toBe(true);
    for (const no of ["11.0.0.1", "192.168.1.8", "::ffff:192.168.1.8", "fe80::1", "::2", "172.32.0.1", "127.0.0.1", undefined, "not-an-ip"]) expect(allow.allows(no), String(no)).toBe(false);
    expect(parseAllowList(["0.0.0.0/0"]).allows("::ffff:8.8.8.8")).toBe(true);
    expect(parseAllowList(["0.0.0.0/0"]).allows("2001:db8::1")).toBe(false);
    expect(parseAllowList(["::/0"]).allows("2001:db8::1")).toBe(true);
    expect(parseAllowList(["10.1.2.3/8"]).allows("10.9.9.9")).toBe(true);
    expect(parseAddress("::ffff:a00:1")).toEqual({ v6: false, value: 0x0a000001n });
    expect(parseAddress("2001:db8::8a2e:370:7334")).toEqual({ v6: true, value: 0x20010db80000000000008a2e03707334n });
    expect(parseAddress("fe80::1%eth0")).toEqual({ v6: true, value: 0xfe800000000000000000000000000001n });
  });

  it("refuses bad blocks, naming the flag and the value", () => {
    for (const bad of ["10.0.0.0/33", "10.0.0/8", "fd00::/129", "host.example", "10.0.0.0/8/1", "::ffff:10.0.0.0/64", "1.2.3.4/-1"]) {
      expect(() => parseAllowList([bad]), bad).toThrow(UsageError);
      expect(() => parseAllowList([bad]), bad).toThrow(`--allow ${JSON.stringify(bad)}`);
    }
  });
});

describe("password hashes", () => {
  it("round-trips scrypt hashes and checks passwords", async () => {
    const line = await hashPassword("correct horse", FAST);
    expect(line).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/);
    const parsed = parsePasswordHash(line);
    if (typeof parsed === "string") throw new Error(parsed);
    expect(await verifyPassword("correct horse", parsed)).toBe(true);
    expect(await verifyPassword("correct horsE", parsed)).toBe(false);
    expect(await hashPassword("correct horse", FAST)).not.toBe(line);
  });

  it("parses auth files and names bad lines without echoing them", async () => {
    const good = await hashPassword("pw", FAST);
    const users = parseAuthFile(`# users\n\nalice:${good}\nbob:${good}\n`, "users.txt");
    expect([...users.keys()]).toEqual(["alice", "bob"]);
    const bad = () => parseAuthFile(`alice:${good}\nalice:${good}\nnocolon\ncarol:plaintext-secret\ndave:scrypt$1000$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=\n`, "users.txt");
    expect(bad).toThrow(ConfigError);
    let message = "";
    try {
      bad();
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/line 2: user "alice" is listed twice/);
    expect(message).toMatch(/line 3: expected user:scrypt/);
    expect(message).toMatch(/line 4: not a scrypt/);
    expect(message).toMatch(/line 5: N must be a power of two/);
    expect(message).not.toMatch(/plaintext-secret/);
    expect(() => parseAuthFile("# nobody\n", "users.txt")).toThrow(/lists no users/);
  });

  it("authenticates Basic credentials, caches successes and refuses everything else", async () => {
    let now = 0;
    const users = parseAuthFile(`alice:${await hashPassword("s3cret:with colon", FAST)}\n`, "users");
    const auth = createAuthenticator(users, { now: () => now, cacheMs: 1000 });
    const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
    expect(auth.challenge).toBe('Basic realm="update-mirror", charset="UTF-8"');
    expect(await auth.authenticate(basic("alice", "s3cret:with colon"))).toBe("alice");
    expect(await auth.authenticate(basic("alice", "s3cret:with colon"))).toBe("alice");
    now = 5000;
    expect(await auth.authenticate(basic("alice", "s3cret:with colon"))).toBe("alice");
    for (const header of [undefined, "", basic("alice", "wrong"), basic("mallory", "s3cret:with colon"), "Bearer abc", "Basic !!!", `Basic ${Buffer.from("nocolon").toString("base64")}`, `Basic ${"A".repeat(5000)}`]) {
      expect(await auth.authenticate(header), String(header)).toBeUndefined();
    }
  });
});

describe("listings", () => {
  const entries: ListingEntry[] = [
    { name: "sub dir", dir: true, mtimeMs: Date.UTC(2026, 10, 28, 10, 0) },
    { name: 'a<b>&"c\'.txt', dir: false, mtimeMs: Date.UTC(2026, 0, 5, 7, 9), size: 12, sha256: "ab".repeat(32) },
    { name: `${"x".repeat(60)}.bin`, dir: false, mtimeMs: Date.UTC(2026, 0, 5, 7, 9), size: 1234567, sha256: "cd".repeat(32) },
  ];

  it("renders nginx's autoindex HTML with escaped names and encoded hrefs", () => {
    const html = renderHtmlListing("x/y", entries);
    expect(html.startsWith("<html>\r\n<head><title>Index of /x/y/</title></head>\r\n<body>\r\n<h1>Index of /x/y/</h1><hr><pre><a href=\"../\">../</a>\r\n")).toBe(true);
    expect(html).toContain(`<a href="sub%20dir/">sub dir/</a>${" ".repeat(42)} 28-Nov-2026 10:00${" ".repeat(19)}-\r\n`);
    expect(html).toContain(`<a href="a%3Cb%3E%26%22c'.txt">a&lt;b&gt;&amp;&quot;c&#39;.txt</a>${" ".repeat(38)} 05-Jan-2026 07:09${" ".repeat(18)}12\r\n`);
    expect(html).toContain(`>${"x".repeat(47)}..&gt;</a> 05-Jan-2026 07:09`);
    expect(html.endsWith("</pre><hr></body>\r\n</html>\r\n")).toBe(true);
    expect(renderHtmlListing("", [])).not.toContain("../");
    expect(escapeHtml(`<script>"'&`)).toBe("&lt;script&gt;&quot;&#39;&amp;");
  });

  it("renders nginx's JSON listing shape with hashes", () => {
    expect(JSON.parse(renderJsonListing(entries.slice(0, 2)))).toEqual([
      { name: "sub dir", type: "directory", mtime: "Sat, 28 Nov 2026 10:00:00 GMT" },
      { name: 'a<b>&"c\'.txt', type: "file", mtime: "Mon, 05 Jan 2026 07:09:00 GMT", size: 12, sha256: "ab".repeat(32) },
    ]);
  });
});

describe("small parts", () => {
  it("picks content types by extension", () => {
    expect(contentTypeFor("a/b/daily.cvd")).toBe("application/octet-stream");
    expect(contentTypeFor("README.TXT")).toBe("text/plain; charset=utf-8");
    expect(contentTypeFor("x.tar.gz")).toBe("application/gzip");
    expect(contentTypeFor("dir.d/noext")).toBe("application/octet-stream");
  });

  it("judges health by readability, expiry and age", () => {
    const createdMs = Date.parse("2026-01-01T00:00:00Z");
    const snapshot = { version: 7, createdMs, expiresMs: createdMs + 86_400_000 } as Snapshot;
    expect(healthOf(snapshot, { ok: true }, undefined, createdMs + 60_000)).toEqual({ status: 200, body: '{"status":"ok","version":7,"ageSeconds":60}\n' });
    expect(healthOf(snapshot, { ok: true }, 30_000, createdMs + 60_000).status).toBe(503);
    expect(JSON.parse(healthOf(snapshot, { ok: true }, 30_000, createdMs + 60_000).body).reason).toMatch(/60 s old, more than the allowed 30 s/);
    expect(JSON.parse(healthOf(snapshot, { ok: true }, undefined, createdMs + 86_400_001).body).reason).toMatch(/expired/);
    expect(JSON.parse(healthOf(snapshot, { ok: false, error: "boom" }, undefined, createdMs).body)).toEqual({ status: "unhealthy", version: 7, ageSeconds: 0, reason: "boom" });
  });
});
