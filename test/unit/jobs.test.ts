// Jobs: their config (dot.path errors, comments, the shipped init template), the command line each stands for, bandwidth timetables, status roll-up, and the scheduler.
import { describe, expect, it } from "vitest";
import { problemsOf } from "../support/config-problems.js";
import { loadConfigFile, validateConfig, withoutComments } from "../../src/config/load.js";
import type { Job } from "../../src/config/job-schema.js";
import { defaultConfigPath } from "../../src/config/paths.js";
import { combinedStatus, type StatusReport } from "../../src/commands/status.js";
import { jobArgv, jobTarget } from "../../src/jobs/argv.js";
import type { JobOutcome, JobRunOptions } from "../../src/jobs/run-job.js";
import { startScheduler } from "../../src/jobs/scheduler.js";
import { createRateLimiter } from "../../src/wrap/bandwidth.js";
import { bandwidthPeriodText, parseBandwidthPeriod, rateAt } from "../../src/wrap/bandwidth-schedule.js";
import { pino } from "pino";


const SYNC: Job = { type: "sync", sources: ["https://up.example/av/", "/mnt/backup"], dest: "/srv/mirror" };

describe("job config", () => {
  it("names the dot.path of a bad schedule, an unknown type, a bad name and a key of another type", () => {
    const problems = problemsOf({
      jobs: {
        nightly: { ...SYNC, schedule: "every night" },
        odd: { type: "mirror", dest: "/x" },
        "Bad Name": SYNC,
        pull1: { type: "pull", sources: ["http://m/"], to: "/x", dest: "/y" },
      },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^jobs\.nightly\.schedule: must be a cron expression/),
        expect.stringMatching(/^jobs\.odd\.type: /),
        expect.stringMatching(/^jobs\.Bad Name: job names are/),
        expect.stringMatching(/^jobs\.pull1: .*dest/),
      ]),
    );
  });

  it("takes cron with seconds and nicknames, and checks timetables and hooks", () => {
    expect(() => validateConfig({ jobs: { a: { ...SYNC, schedule: "*/5 * * * * *" }, b: { ...SYNC, schedule: "@daily" } } }, "t")).not.toThrow();
    const problems = problemsOf({ jobs: { a: { ...SYNC, bandwidthSchedule: [{ days: ["monday"], from: "8:00", to: "18:00", rate: "fast" }], hooks: { onDone: "x" } } } });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^jobs\.a\.bandwidthSchedule\[0\]\.days\[0\]: /),
        expect.stringMatching(/^jobs\.a\.bandwidthSchedule\[0\]\.from: must be a time of day/),
        expect.stringMatching(/^jobs\.a\.bandwidthSchedule\[0\]\.rate: /),
        expect.stringMatching(/^jobs\.a\.hooks: .*onDone/),
      ]),
    );
  });

  it("reads comments without touching strings that look like them", () => {
    const text = '{ // a comment\n "a": "http://x/*y*/", /* block\n over lines */ "b": "//not a comment" }';
    expect(JSON.parse(withoutComments(text))).toEqual({ a: "http://x/*y*/", b: "//not a comment" });
    expect(withoutComments(text).split("\n")).toHaveLength(text.split("\n").length);
  });

  it("ships an init template that is valid and schedules its sync job", async () => {
    const config = await loadConfigFile(new URL("../../config/init.jsonc", import.meta.url).pathname);
    expect(config.jobs["nightly-sync"]?.schedule).toBe("30 2 * * *");
    expect(config.jobs["export-usb"]?.type).toBe("export");
  });

  it("looks for the config where the platform keeps it, unless UPDATE_MIRROR_CONFIG says otherwise", () => {
    expect(defaultConfigPath({}, "linux")).toBe("/etc/update-mirror/config.json");
    expect(defaultConfigPath({ ProgramData: "D:\\PD" }, "win32")).toBe("D:\\PD\\update-mirror\\config.json");
    expect(defaultConfigPath({ UPDATE_MIRROR_CONFIG: "/x.json" }, "linux")).toBe("/x.json");
  });
});

describe("a job's command line", () => {
  it("maps every sync setting to its flag and passes the config on", () => {
    const job: Job = {
      ...SYNC,
      trust: ["v.pub"],
      signKey: "m.key",
      signKeyPassphraseEnv: "PASS",
      include: ["kes/**"],
      exclude: ["**/*.tmp"],
      select: { product: ["kes", "kav"], platform: ["linux"] },
      concurrency: 2,
      retries: 1,
      maxDelete: "10%",
      keepGenerations: 5,
      expires: "7d",
      bandwidth: "10M",
      bandwidthSchedule: [{ days: ["mon", "fri"], from: "08:00", to: "18:00", rate: "1M" }],
      allowRollback: true,
    };
    expect(jobArgv(job, "/etc/um.json")).toEqual([
      "sync",
      "--source", "https://up.example/av/", "--source", "/mnt/backup",
      "--dest", "/srv/mirror",
      "--sign-key", "m.key", "--passphrase-env", "PASS", "--keep-generations", "5", "--expires", "7d",
      "--trust", "v.pub", "--include", "kes/**", "--exclude", "**/*.tmp",
      "--select", "product=kes,kav", "--select", "platform=linux",
      "--concurrency", "2", "--retries", "1", "--max-delete", "10%",
      "--bwlimit", "10M", "--bwlimit-schedule", "mon,fri 08:00-18:00 1M",
      "--allow-rollback",
      "--config", "/etc/um.json",
    ]);
  });

  it("maps export, import and pull, and knows where each keeps its history", () => {
    expect(jobArgv({ type: "export", mirror: "/srv/m", to: "/media/usb/d.zip", since: 41, splitSize: "4G" }, undefined)).toEqual(["export", "/srv/m", "--to", "/media/usb/d.zip", "--since", "41", "--split-size", "4G"]);
    expect(jobArgv({ type: "import", medium: "/media/usb", to: "/srv/in", trust: ["d.pub"], allowExpired: true }, "c.json")).toEqual(["import", "/media/usb", "--to", "/srv/in", "--trust", "d.pub", "--allow-expired"]);
    expect(jobArgv({ type: "pull", sources: ["http://m/"], to: "/var/lib/av", keep: 2 }, "c.json")).toEqual(["pull", "--source", "http://m/", "--to", "/var/lib/av", "--keep", "2", "--config", "c.json"]);
    expect(jobTarget({ type: "export", mirror: "/srv/m", to: "/media/usb" })).toEqual({ kind: "mirror", path: "/srv/m" });
    expect(jobTarget({ type: "pull", sources: ["http://m/"], to: "/var/lib/av" })).toEqual({ kind: "endpoint", path: "/var/lib/av" });
  });
});

describe("bandwidth timetable", () => {
  const at = (day: number, hh: number, mm = 0) => new Date(2026, 10, 22 + day, hh, mm); // 2026-11-22 is a Sunday
  const business = parseBandwidthPeriod("mon-fri 08:00-18:00 2M");
  const night = parseBandwidthPeriod("fri 22:00-06:00 off");

  it("caps business hours on weekdays only, and falls back outside them", () => {
    expect(rateAt([business], 10 * 1024 * 1024, at(1, 9))).toBe(2 * 1024 * 1024);
    expect(rateAt([business], 10 * 1024 * 1024, at(1, 18))).toBe(10 * 1024 * 1024);
    expect(rateAt([business], undefined, at(6, 9))).toBeUndefined();
  });

  it("runs a period past midnight on the day after it starts", () => {
    expect(rateAt([night], 5, at(5, 23))).toBeUndefined();
    expect(rateAt([night], 5, at(6, 5, 59))).toBeUndefined();
    expect(rateAt([night], 5, at(6, 6))).toBe(5);
    expect(rateAt([night], 5, at(4, 23))).toBe(5);
  });

  it("reads the config's form back, and names a bad entry", () => {
    expect(parseBandwidthPeriod(bandwidthPeriodText({ days: ["sat", "sun"], from: "00:00", to: "00:00", rate: "off" }))).toEqual({ days: new Set([6, 0]), from: 0, to: 0, rate: undefined });
    expect(() => parseBandwidthPeriod("weekdays 08:00-18:00 2M")).toThrow(/"weekdays" is not a day/);
    expect(() => parseBandwidthPeriod("08:00-25:00 2M")).toThrow(/"25:00" is not a time of day/);
  });

  it("paces at the rate of the moment, and not at all while uncapped", async () => {
    let rate: number | undefined;
    let clock = 0;
    const slept: number[] = [];
    const limiter = createRateLimiter(
      () => rate,
      () => clock,
      async (ms) => {
        slept.push(ms);
        clock += ms;
      },
    );
    await limiter.take(10_000_000);
    expect(slept).toEqual([]);
    rate = 1000;
    await limiter.take(1000);
    await limiter.take(2000);
    expect(slept).toEqual([2000]);
  });
});

describe("status of several jobs", () => {
  const report = (job: string, status: StatusReport["status"], summary: string) => ({ job, status, summary, dest: `/m/${job}` }) as StatusReport;
  it("is the worst of them, naming the ones that are not OK", () => {
    expect(combinedStatus([report("a", "ok", "fine"), report("b", "ok", "fine")])).toEqual({ status: "ok", summary: "2 jobs: 2 OK" });
    const mixed = combinedStatus([report("a", "ok", "fine"), report("b", "unknown", "no version"), report("c", "warning", "3.1d old")]);
    expect(mixed.status).toBe("unknown");
    expect(mixed.summary).toBe("3 jobs: 1 OK, 1 WARNING, 1 UNKNOWN (b: no version; c: 3.1d old)");
    expect(combinedStatus([report("a", "warning", "old"), report("b", "critical", "expired")]).status).toBe("critical");
  });
});

describe("the scheduler", () => {
  const silent = pino({ level: "silent" });
  const outcome = (name: string): JobOutcome => ({ name, exitCode: 0, result: "unchanged", hooks: [], started: "", finished: "" });

  it("runs a job whose last recorded run is older than its last due time at once, and one whose is newer only when due", async () => {
    const ran: string[] = [];
    const scheduler = startScheduler({
      config: validateConfig({ jobs: { missed: { ...SYNC, schedule: "0 3 * * *" }, recent: { ...SYNC, schedule: "0 3 * * *" }, manual: SYNC } }, "t"),
      configFile: undefined,
      logArgs: [],
      logger: silent,
      now: () => new Date("2026-11-28T12:00:00"),
      readHistory: async (name) => [{ job: name, started: name === "missed" ? "2026-11-27T03:00:00" : "2026-11-28T03:00:05", finished: "", result: "unchanged" }],
      run: async (o) => {
        ran.push(o.name);
        return outcome(o.name);
      },
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(ran).toEqual(["missed"]);
    expect(scheduler.nextRuns().map((n) => n.job)).toEqual(["missed", "recent"]);
    await scheduler.stop();
  });

  it("runs one job at a time, never queues a job twice, and on stop aborts the run under way and waits for it", async () => {
    const calls: { name: string; signal: AbortSignal | undefined }[] = [];
    let release: () => void = () => undefined;
    const scheduler = startScheduler({
      config: validateConfig({ jobs: { a: { ...SYNC, schedule: "* * * * * *" }, b: { ...SYNC, schedule: "* * * * * *" } } }, "t"),
      configFile: undefined,
      logArgs: [],
      logger: silent,
      readHistory: async () => [{ job: "x", started: new Date().toISOString(), finished: "", result: "unchanged" }],
      run: (o: JobRunOptions) => {
        calls.push({ name: o.name, signal: o.signal });
        return new Promise((resolve) => {
          release = () => resolve(outcome(o.name));
          o.signal?.addEventListener("abort", release);
        });
      },
    });
    // Several seconds of due times while the first run hangs: nothing else starts, nothing piles up.
    await new Promise((r) => setTimeout(r, 3_500));
    expect(calls).toHaveLength(1);
    const stopped = scheduler.stop();
    await stopped;
    expect(calls[0]?.signal?.aborted).toBe(true);
    expect(calls).toHaveLength(1);
  }, 10_000);

  it("takes a reloaded config: a job removed is no longer scheduled", async () => {
    const scheduler = startScheduler({
      config: validateConfig({ jobs: { a: { ...SYNC, schedule: "0 3 * * *" }, b: { ...SYNC, schedule: "0 4 * * *" } } }, "t"),
      configFile: undefined,
      logArgs: [],
      logger: silent,
      readHistory: async () => [{ job: "x", started: new Date().toISOString(), finished: "", result: "unchanged" }],
      run: async (o) => outcome(o.name),
    });
    scheduler.reload(validateConfig({ jobs: { b: { ...SYNC, schedule: "0 4 * * *" } } }, "t"), undefined);
    expect(scheduler.nextRuns().map((n) => n.job)).toEqual(["b"]);
    await scheduler.stop();
  });
});
