// Jobs through the built CLI: init, run JOB with hooks, history, status of every job, and the daemon (two jobs, one failing, SIGHUP, SIGTERM mid-transfer).
import { execFile, spawn } from "node:child_process";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { REPO_ROOT, runCli, scratchDir } from "../support/cli.js";
import { makeUpstream, startVendorServer, type VendorServer } from "../servers/vendor-server.js";

const exec = promisify(execFile);
let dir: string;
let cleanup: () => Promise<void>;
let server: VendorServer | undefined;

beforeAll(async () => {
  ({ dir, cleanup } = await scratchDir("jobs"));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
});
afterAll(async () => {
  await cleanup?.();
});

const TAGS = [
  { match: "kes/**", set: { product: "kes", version: "12.1.0.553" } },
  { match: "kes/old/**", set: { product: "kes", version: "12.0.9" } },
  { match: "clamav/**", set: { product: "clamav", version: "27000" } },
];

/** A hook that appends its event and the variables it was given to `file`, one line per call. */
const recorder = (file: string) =>
  `echo "$UPDATE_MIRROR_EVENT job=$UPDATE_MIRROR_JOB result=$UPDATE_MIRROR_RESULT version=$UPDATE_MIRROR_VERSION new=$UPDATE_MIRROR_NEW_VERSION added=$UPDATE_MIRROR_ADDED exit=$UPDATE_MIRROR_EXIT_CODE error=$UPDATE_MIRROR_ERROR" >> ${file}`;

async function writeConfig(name: string, doc: unknown): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, `// written by the test\n${JSON.stringify(doc, null, 2)}\n`);
  return file;
}

describe("init", () => {
  it("writes an annotated config only it and its group can read, which validates; never over an existing one", async () => {
    const file = join(dir, "etc", "config.json");
    const first = await runCli(["init", "--config", file]);
    expect(first.code, first.stderr).toBe(0);
    expect(((await stat(file)).mode & 0o777).toString(8)).toBe("640");
    expect(await readFile(file, "utf8")).toMatch(/^\/\/ update-mirror configuration/);
    const status = await runCli(["status", "--config", file, "--json"]);
    expect(status.code).toBe(3); // valid, but nothing synced yet: UNKNOWN
    expect((JSON.parse(status.stdout) as { jobs: { job: string }[] }).jobs.map((j) => j.job)).toEqual(["nightly-sync", "export-usb"]);
    // A check that cannot tell is UNKNOWN, never CRITICAL: a config that is not there, a bad flag.
    const missing = await runCli(["status", "--config", join(dir, "etc", "missing.json")]);
    expect(missing.code).toBe(3);
    expect(missing.stdout).toMatch(/^UPDATE-MIRROR UNKNOWN - config file .*missing\.json/);
    expect((await runCli(["status", "--dest", dir, "--warn", "2d", "--crit", "1d"])).code).toBe(3);
    await writeFile(file, "{}\n");
    const again = await runCli(["init", "--config", file]);
    expect(again.code).toBe(EXIT.usage);
    expect(again.stderr).toMatch(/exists already; it was left as it is/);
    expect(await readFile(file, "utf8")).toBe("{}\n");
  });
});

describe("run JOB", () => {
  it("runs a sync job and its hooks, records each run, and a second run changes nothing and says so", async () => {
    const up = join(dir, "up1");
    await makeUpstream(up, { "kes/bases/a.avc": "a1\n", "kes/old/b.avc": "b1\n", "clamav/main.cvd": "c1\n" }, { tagRules: TAGS });
    server = await startVendorServer(up);
    const hooks = join(dir, "hooks1.log");
    const mirror = join(dir, "mirror1");
    const config = await writeConfig("run1.json", {
      jobs: { nightly: { type: "sync", sources: [server.url], dest: mirror, hooks: { onChange: recorder(hooks), onSuccess: recorder(hooks), onFailure: recorder(hooks) } } },
      logging: { file: join(dir, "run1.log") },
    });
    const first = await runCli(["run", "nightly", "--config", config]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/published version 1/);
    const second = await runCli(["run", "nightly", "--config", config, "--json"]);
    expect(second.code, second.stderr).toBe(0);
    const done = second.stdout.trim().split("\n").map((l) => JSON.parse(l) as { type: string; result?: string }).at(-1);
    expect(done).toMatchObject({ type: "job:done", result: "unchanged" });
    expect((await readFile(hooks, "utf8")).trim().split("\n")).toEqual([
      "change job=nightly result=updated version=1 new=1 added=3 exit=0 error=",
      "success job=nightly result=updated version=1 new=1 added=3 exit=0 error=",
      "success job=nightly result=unchanged version=1 new=1 added=0 exit=0 error=",
    ]);

    const history = await runCli(["history", "--job", "nightly", "--config", config, "--json"]);
    expect(history.code, history.stderr).toBe(0);
    const runs = history.stdout.trim().split("\n").map((l) => JSON.parse(l) as { job: string; command: string; result: string; added: number; source: string });
    expect(runs.map((r) => [r.job, r.command, r.result, r.added])).toEqual([
      ["nightly", "sync", "updated", 3],
      ["nightly", "sync", "unchanged", 0],
    ]);
    expect(runs[0]?.source).toBe(server.url);
    const text = await runCli(["history", "--dest", mirror, "--last", "1"]);
    expect(text.stdout).toMatch(/^\S+ {2}sync {2}\[nightly\] {2}UNCHANGED {2}version 1/);

    const status = await runCli(["status", "--job", "nightly", "--config", config, "--json"]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ job: "nightly", status: "ok", files: 3, products: { kes: "12.1.0.553", clamav: "27000" } });
    // The job's own log has the parent's job lines and the child's engine lines, in one file.
    const log = await readFile(join(dir, "run1.log"), "utf8");
    expect(log).toMatch(/"msg":"job:done"/);
    expect(log).toMatch(/"msg":"hook:done"/);
    expect(log).toMatch(/"event":"run:done"/);
  });

  it("runs onFailure with the error when the job fails, exits with the job's code, and a failing hook after a good run exits 9", async () => {
    const hooks = join(dir, "hooks2.log");
    const up = join(dir, "up2");
    await makeUpstream(up, { "a.txt": "a\n" });
    const config = await writeConfig("run2.json", {
      jobs: {
        broken: { type: "sync", sources: ["http://127.0.0.1:9/"], dest: join(dir, "mirror2"), retries: 0, hooks: { onFailure: recorder(hooks), onSuccess: recorder(hooks) } },
        grumpy: { type: "sync", sources: [up], dest: join(dir, "mirror3"), hooks: { onSuccess: "echo no; exit 4" } },
      },
    });
    const broken = await runCli(["run", "broken", "--config", config]);
    expect(broken.code).toBe(EXIT.network);
    expect(broken.stderr).toMatch(/job broken: no usable source/);
    expect(await readFile(hooks, "utf8")).toMatch(/^failure job=broken result=failed version= new= added= exit=7 error=no usable source/);
    const grumpy = await runCli(["run", "grumpy", "--config", config]);
    expect(grumpy.code).toBe(EXIT.hook);
    expect(grumpy.stderr).toMatch(/job grumpy: onSuccess hook exited with 4 \(the job ended updated\)/);
    const unknown = await runCli(["run", "nosuch", "--config", config]);
    expect(unknown.code).toBe(EXIT.usage);
    expect(unknown.stderr).toMatch(/no job "nosuch" in .*run2\.json \(jobs: broken, grumpy\)/);
    // The failure is in the mirror's history too, with its error.
    const history = await runCli(["history", "--job", "broken", "--config", config]);
    expect(history.stdout).toMatch(/\[broken\] {2}FAILED .* - E_SOURCE: no usable source/);
  });

  it("records an export job in the source mirror's history, and status rolls every job up into one check", async () => {
    const up = join(dir, "up4");
    await makeUpstream(up, { "kes/a.avc": "a\n" }, { tagRules: TAGS });
    const mirror = join(dir, "mirror4");
    const config = await writeConfig("run4.json", {
      jobs: {
        sync4: { type: "sync", sources: [up], dest: mirror, warn: "1h", crit: "2h" },
        usb: { type: "export", mirror, to: join(dir, "usb4") },
      },
    });
    expect((await runCli(["status", "--config", config])).code).toBe(3);
    expect((await runCli(["run", "sync4", "--config", config])).code).toBe(0);
    const exported = await runCli(["run", "usb", "--config", config]);
    expect(exported.code, exported.stderr).toBe(0);
    const history = await runCli(["history", "--dest", mirror, "--json"]);
    expect(history.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { command: string; job: string }).job)).toEqual(["sync4", "usb"]);
    const all = await runCli(["status", "--config", config]);
    expect(all.code, all.stdout).toBe(0);
    expect(all.stdout).toMatch(/^UPDATE-MIRROR OK - 2 jobs: 2 OK\n/);
    expect(all.stdout).toMatch(/job usb: mirror .*mirror4/);
    // Flags override every job's thresholds: data a second old is now WARNING everywhere.
    await new Promise((r) => setTimeout(r, 1_100));
    const json = await runCli(["status", "--config", config, "--json", "--warn", "1s", "--crit", "1d"]);
    const parsed = JSON.parse(json.stdout) as { status: string; jobs: { job: string; status: string; products: Record<string, string> }[] };
    expect(parsed.jobs.map((j) => [j.job, j.status])).toEqual([
      ["sync4", "warning"],
      ["usb", "warning"],
    ]);
    expect(parsed.status).toBe("warning");
    expect(json.code).toBe(1);
  });
});

describe("limits", () => {
  it("runs a job's process at its nice level", async () => {
    const up = join(dir, "up-nice");
    const tree: Record<string, Buffer> = {};
    for (let i = 0; i < 8; i++) tree[`f${i}.bin`] = Buffer.alloc(64 * 1024, i);
    await makeUpstream(up, tree);
    server = await startVendorServer(up);
    server.setFault("*", { kind: "slow", delayMs: 50, chunkBytes: 8192 });
    const config = await writeConfig("nice.json", { jobs: { gentle: { type: "sync", sources: [server.url], dest: join(dir, "mirror-nice"), nice: 7, concurrency: 1 } } });
    const run = runCli(["run", "gentle", "--config", config]);
    // The job's own process is the one started with --as-job gentle.
    let niceness: string | undefined;
    for (let tries = 0; tries < 100 && niceness === undefined; tries++) {
      const pids = await exec("pgrep", ["-f", "--", "--as-job gentle"]).then((r) => r.stdout.trim().split("\n").filter((p) => p !== ""), () => []);
      if (pids.length > 0) niceness = (await exec("ps", ["-o", "ni=", "-p", pids[0] as string])).stdout.trim();
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(niceness).toBe("7");
    server.setFault("*", undefined);
    expect((await run).code).toBe(0);
  }, 60_000);
});

describe("stopping", () => {
  it("a job signalled twice at once (systemd stops the whole service) still finishes its files and records the stop", async () => {
    const up = join(dir, "up-stop");
    const tree: Record<string, Buffer> = {};
    for (let i = 0; i < 12; i++) tree[`f${String(i).padStart(2, "0")}.bin`] = Buffer.alloc(64 * 1024, i);
    await makeUpstream(up, tree);
    server = await startVendorServer(up);
    server.setFault("*", { kind: "slow", delayMs: 40, chunkBytes: 8192 });
    const mirror = join(dir, "mirror-stop");
    const config = await writeConfig("stop.json", { jobs: { stoppy: { type: "sync", sources: [server.url], dest: mirror, concurrency: 1 } } });
    const parent = spawn(process.execPath, [join(REPO_ROOT, "bin/update-mirror.js"), "run", "stoppy", "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<number | null>((resolve) => parent.once("close", (code) => resolve(code)));
    let child: string | undefined;
    for (let tries = 0; tries < 200 && child === undefined; tries++) {
      if (server.requests.some((r) => r.path.startsWith("f"))) child = (await exec("pgrep", ["-f", "--", "--as-job stoppy"]).catch(() => ({ stdout: "" }))).stdout.trim().split("\n")[0] || undefined;
      if (child === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(child, "the job's process, fetching").toBeDefined();
    parent.kill("SIGTERM");
    process.kill(Number(child), "SIGTERM");
    expect(await exited).toBe(EXIT.stopped);
    const history = await runCli(["history", "--job", "stoppy", "--config", config, "--json"]);
    expect(JSON.parse(history.stdout.trim())).toMatchObject({ result: "failed", error: { code: "E_STOPPED" } });
    expect((await runCli(["verify", mirror])).code).not.toBe(0); // nothing was ever published there
    server.setFault("*", undefined);
    expect((await runCli(["run", "stoppy", "--config", config])).code).toBe(0);
    expect((await runCli(["verify", mirror])).code).toBe(0);
  }, 60_000);
});

describe("daemon", () => {
  it("runs two jobs on their schedules, outlives the failing one, rejects a broken reload, and stops cleanly on SIGTERM mid-transfer", async () => {
    const up = join(dir, "up-d");
    const tree: Record<string, Buffer> = {};
    for (let i = 0; i < 30; i++) tree[`db/f${String(i).padStart(2, "0")}.bin`] = Buffer.alloc(64 * 1024, i);
    await makeUpstream(up, { "base.txt": "v1\n" });
    server = await startVendorServer(up);
    const mirror = join(dir, "mirror-d");
    const log = join(dir, "daemon.log");
    const jobs = {
      steady: { type: "sync", sources: [server.url], dest: mirror, schedule: "*/2 * * * * *", concurrency: 1 },
      broken: { type: "sync", sources: ["http://127.0.0.1:9/"], dest: join(dir, "mirror-broken"), schedule: "*/2 * * * * *", retries: 0 },
    };
    const config = await writeConfig("daemon.json", { jobs, logging: { file: log, level: "info" } });
    const child = spawn(process.execPath, [join(REPO_ROOT, "bin/update-mirror.js"), "daemon", "--config", config], { stdio: ["ignore", "pipe", "pipe"], cwd: REPO_ROOT });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
    const runsOf = async (name: string) => {
      const r = await runCli(["history", "--job", name, "--config", config, "--json", "--last", "0"]);
      return r.stdout.trim() === "" ? [] : r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { result: string; error?: { code: string } });
    };
    const waitFor = async (what: string, check: () => Promise<boolean>, ms = 30_000) => {
      const until = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}; daemon stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    try {
      await waitFor("both jobs to run twice", async () => (await runsOf("steady")).length >= 2 && (await runsOf("broken")).length >= 2);
      expect((await runsOf("broken")).every((r) => r.result === "failed")).toBe(true);
      expect((await runsOf("steady"))[0]?.result).toBe("updated");

      // A broken config on SIGHUP is refused; the daemon goes on with the one it has.
      await writeFile(config, "{ not json");
      child.kill("SIGHUP");
      await waitFor("the reload to be refused", async () => /reload failed, keeping the previous config/.test(stderr));
      await writeConfig("daemon.json", { jobs, logging: { file: log, level: "info" } });

      // A big, slow change upstream: SIGTERM lands while files are being fetched.
      await makeUpstream(up, tree);
      server.setFault("*", { kind: "slow", delayMs: 40, chunkBytes: 8192 });
      await waitFor("a transfer of the new files", async () => server?.requests.some((r) => r.path.startsWith("db/")) ?? false);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/SIGTERM: stopping; a job under way finishes its files first/);

      const verified = await runCli(["verify", mirror]);
      expect(verified.code, verified.stdout + verified.stderr).toBe(0);
      expect(verified.stdout).toMatch(/version 1,/);
      const last = (await runsOf("steady")).at(-1);
      expect(last).toMatchObject({ result: "failed", error: { code: "E_STOPPED" } });
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 120_000);
});
