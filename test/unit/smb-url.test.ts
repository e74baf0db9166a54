// smb:// URL parsing: user, domain, port, share and path; passwords refused without being echoed; labels without credentials.
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/core/errors.js";
import { ntStatusName } from "../../src/smb/client.js";
import { parseSmbUrl } from "../../src/smb/url.js";

describe("parseSmbUrl", () => {
  it("reads host, default port, share and no user (a guest login)", () => {
    expect(parseSmbUrl("smb://fileserver/updates")).toEqual({ host: "fileserver", port: 445, share: "updates", path: [], domain: "", label: "smb://fileserver/updates/" });
  });

  it("reads a user, a port and a path below the share", () => {
    const u = parseSmbUrl("smb://mirror@10.0.0.5:4445/data/vendor/kes/");
    expect(u).toMatchObject({ host: "10.0.0.5", port: 4445, share: "data", path: ["vendor", "kes"], domain: "", user: "mirror" });
    expect(u.label).toBe("smb://10.0.0.5:4445/data/vendor/kes/");
  });

  it("reads DOMAIN;user, also %-encoded, and keeps the label free of both", () => {
    for (const spec of ["smb://CORP;svc-mirror@fs1.corp.example/share", "smb://CORP%3Bsvc-mirror@fs1.corp.example/share"]) {
      const u = parseSmbUrl(spec);
      expect(u).toMatchObject({ domain: "CORP", user: "svc-mirror", host: "fs1.corp.example", share: "share" });
      expect(u.label).toBe("smb://fs1.corp.example/share/");
      expect(u.label).not.toContain("svc-mirror");
    }
  });

  it("decodes %-escapes in share and path, and re-encodes them in the label", () => {
    const u = parseSmbUrl("smb://h/Public%20Share/a%23b/%C3%BC");
    expect(u.share).toBe("Public Share");
    expect(u.path).toEqual(["a#b", "ü"]);
    expect(u.label).toBe("smb://h/Public%20Share/a%23b/%C3%BC/");
  });

  it("reads an IPv6 host", () => {
    const u = parseSmbUrl("smb://[::1]:4445/data");
    expect(u.host).toBe("::1");
    expect(u.label).toBe("smb://[::1]:4445/data/");
  });

  it("refuses a password in the URL without echoing it", () => {
    let caught: unknown;
    try {
      parseSmbUrl("smb://user:Sup3r-secret@h/share", "source 1");
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).message).toMatch(/source 1: put no password in an smb:\/\/ URL/);
    expect((caught as Error).message).not.toContain("Sup3r-secret");
  });

  it("refuses what is not a usable smb:// URL, naming the problem", () => {
    for (const [spec, problem] of [
      ["smb://host", /names no share/],
      ["smb://host/", /names no share/],
      ["http://host/share", /not an smb:\/\/ URL/],
      ["not a url", /not a URL/],
      ["smb://host/share?x=1", /no \?query/],
      ["smb://DOM;@host/share", /domain but no user/],
      ["smb://host/share/%E0%A4%A", /malformed %-escape/],
      ["smb://host/share/a%5Cb", /backslash/],
    ] as const) {
      expect(() => parseSmbUrl(spec), spec).toThrow(problem);
    }
  });
});

describe("ntStatusName", () => {
  it("names the statuses we map and prints others in hex", () => {
    expect(ntStatusName(0xc0000034)).toBe("STATUS_OBJECT_NAME_NOT_FOUND");
    expect(ntStatusName(0xc000006d)).toBe("STATUS_LOGON_FAILURE");
    expect(ntStatusName(0xc0001234)).toBe("NTSTATUS 0xC0001234");
  });
});
