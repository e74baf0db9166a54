// status: how the age of the applied data maps to Nagios levels, and what the report says when something is missing or failed.
import { describe, expect, it } from "vitest";
import { statusLines, statusReport } from "../../src/commands/status.js";
import { formatTimestamp, type Manifest } from "../../src/core/manifest.js";
import type { Committed, MirrorState } from "../../src/core/store.js";

const HOUR = 3_600_000;
const now = new Date("2026-11-28T12:00:00Z");

function committed(created: string, upstreamVersion?: number, expires?: string): Committed {
  const manifest: Manifest = {
    format: "update-mirror-manifest-v1",
    version: 7,
    created,
    ...(expires !== undefined && { expires }),
    origin: { generator: "update-mirror/test", ...(upstreamVersion !== undefined && { upstream: "http://m/", upstreamVersion }) },
    files: [{ path: "a.db", size: 10, sha256: "0".repeat(64) }],
  };
  return { manifest, bytes: Buffer.alloc(0), signed: false };
}

function state(extra: Partial<MirrorState> = {}): MirrorState {
  return { highestVersion: 7, sources: {}, trusted: {}, listed: {}, ...extra };
}

describe("statusReport", () => {
  it("is UNKNOWN without an applied version, and names the last failure", () => {
    const r = statusReport("/d", "endpoint", undefined, state({ lastRun: { started: "s", finished: "f", result: "failed", error: { code: "E_SOURCE", message: "no usable source:\n  x" } } }), now, 3 * HOUR, 7 * HOUR);
    expect(r.status).toBe("unknown");
    expect(r.summary).toBe("/d holds no applied version yet; last attempt failed: no usable source:");
  });

  it("takes the age from the upstream manifest the applied set came from, not from our own commit", () => {
    const upstreams = [
      { source: "http://m/", version: 42, created: "2026-11-28T11:00:00Z" },
      { source: "http://m/", version: 41, created: "2026-11-28T05:00:00Z" },
    ];
    // Our manifest (a rollback republished 41 just now) is fresh; the data is 7 hours old.
    const r = statusReport("/d", "endpoint", committed("2026-11-28T11:59:00Z", 41), state({ upstreams }), now, 3 * HOUR, 6 * HOUR);
    expect(r).toMatchObject({ status: "critical", ageSeconds: 7 * 3600, upstreamVersion: 41, version: 7, created: "2026-11-28T05:00:00Z" });
    expect(statusLines(r)[0]).toBe("UPDATE-MIRROR CRITICAL - version 41 is 7h old | age=25200s;10800;21600;0");
  });

  it("maps the thresholds to OK, WARNING and CRITICAL, inclusive", () => {
    const at = (hoursOld: number) => statusReport("/d", "mirror", committed(formatTimestamp(new Date(now.getTime() - hoursOld * HOUR))), state(), now, 3 * HOUR, 7 * HOUR).status;
    expect([at(0), at(2.9), at(3), at(6.9), at(7), at(100)]).toEqual(["ok", "ok", "warning", "warning", "critical", "critical"]);
  });

  it("is CRITICAL once the applied manifest has expired, whatever its age", () => {
    const r = statusReport("/d", "mirror", committed("2026-11-28T11:00:00Z", undefined, "2026-11-28T11:30:00Z"), state(), now, 3 * HOUR, 7 * HOUR);
    expect(r.status).toBe("critical");
    expect(r.summary).toContain("expired at 2026-11-28T11:30:00Z");
  });

  it("keeps OK by age but says when the last attempt failed", () => {
    const r = statusReport("/d", "mirror", committed("2026-11-28T11:00:00Z"), state({ lastRun: { started: "s", finished: "2026-11-28T11:50:00Z", result: "failed", error: { code: "E_SOURCE", message: "down" } } }), now, 3 * HOUR, 7 * HOUR);
    expect(r.status).toBe("ok");
    expect(r.summary).toBe("version 7 is 60m old; last attempt 2026-11-28T11:50:00Z failed: down");
  });
});
