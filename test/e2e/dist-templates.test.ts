// Every file of dist-templates/ and docs/operations.md checked: parsed, the update-mirror commands and options they name exist, their job command lines run, and real tools (systemd-analyze, logrotate, xmllint) accept them (.ci/run installs them); install-task.ps1 gets lexical checks only, since PowerShell is not in Debian.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { Cron } from "croner";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { validateConfig, withoutComments } from "../../src/config/load.js";
import { childStopper } from "../support/child.js";
import { REPO_ROOT, runCli, scratchDir, writeTree } from "../support/cli.js";

const TEMPLATES = join(REPO_ROOT, "dist-templates");
const BIN = join(REPO_ROOT, "bin", "update-mirror.js");
const template = (name: string) => readFileSync(join(TEMPLATES, name), "utf8");

/** A program on PATH or in the sbin folders (logrotate lives in /usr/sbin, often off a user's PATH). */
function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/local/sbin", "/usr/sbin", "/sbin"];
  for (const dir of dirs) {
    if (dir === "") continue;
    const path = join(dir, name);
    try {
      if (statSync(path).isFile()) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

const systemdAnalyze = findTool("systemd-analyze");
const logrotate = findTool("logrotate");
const xmllint = findTool("xmllint");
if (!systemdAnalyze) console.warn("dist-templates: systemd units only parsed, not run through `systemd-analyze verify`: systemd-analyze is not installed (apt-get install systemd)");
if (!logrotate) console.warn("dist-templates: update-mirror.logrotate only parsed, not run through logrotate: logrotate is not installed (apt-get install logrotate)");
if (!xmllint) console.warn("dist-templates: update-mirror-task.xml checked by the test's own well-formedness check only: xmllint is not installed (apt-get install libxml2-utils)");

// ---------------------------------------------------------------------------------------------------
// What the CLI offers, from its own --help (so a template naming a command or option that does not
// exist, or no longer exists, fails here).

const helpTexts = new Map<string, Promise<string>>();
function helpOf(command: string | undefined): Promise<string> {
  const key = command ?? "";
  let text = helpTexts.get(key);
  if (!text) {
    text = runCli(command === undefined ? ["--help"] : [command, "--help"]).then((r) => {
      if (r.code !== 0) throw new Error(`update-mirror ${key} --help exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    });
    helpTexts.set(key, text);
  }
  return text;
}

async function commandNames(): Promise<string[]> {
  return [...(await helpOf(undefined)).matchAll(/^ {2}update-mirror ([a-z]+)\b/gm)].map((m) => m[1] as string);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Options that work but that --help does not list: the global hidden `--job` (set by `run` on the job's
 * command, src/cli/runtime.ts) hides the `--job` that `status` and `history` declare themselves.
 */
const HIDDEN_OPTIONS: Record<string, string[]> = {};

/** Problems with `args` (what follows the program name): the command must exist and every option must be one of its own. */
async function commandLineProblems(args: readonly string[], where: string): Promise<string[]> {
  const [command, ...rest] = args;
  if (command === "--help" || command === "--version") return [];
  const commands = await commandNames();
  if (command === undefined || !commands.includes(command)) return [`${where}: "${command ?? ""}" is not an update-mirror command (there are: ${commands.join(", ")})`];
  // The options the help lists (not the examples, which could name an option that is gone).
  const help = (await helpOf(command)).split(/^Examples:$/m)[0] as string;
  const problems: string[] = [];
  for (const token of rest) {
    if (!/^--?[A-Za-z]/.test(token)) continue;
    const flag = token.replace(/=.*$/, "");
    const names = flag.startsWith("--no-") ? [flag, `--${flag.slice(5)}`] : [flag];
    if (HIDDEN_OPTIONS[command]?.includes(flag)) continue;
    if (!names.some((name) => new RegExp(`(^|[\\s,])${escapeRegExp(name)}(?=[\\s,]|$)`, "m").test(help))) {
      problems.push(`${where}: \`update-mirror ${command}\` has no option ${flag}`);
    }
  }
  return problems;
}

/** Splits a command line on blanks, keeping "double-quoted parts" whole (without their quotes). */
function tokens(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => (m[1] ?? m[2]) as string);
}

/** The tokens before the first shell redirection or operator. */
function beforeShellOperators(words: readonly string[]): string[] {
  const end = words.findIndex((w) => /^(\d?>>?|<|\||\|\||&&|;|&|#)/.test(w));
  return end === -1 ? [...words] : words.slice(0, end);
}

/**
 * Where `text` (a line of code) runs update-mirror: the arguments after each "update-mirror" (or a path
 * ending in it, or update-mirror.cmd) that starts a command line. "-o update-mirror -g", "sudo -u
 * update-mirror update-mirror ..." and "update-mirror /srv/..." are a user name, not a command.
 */
function invocationsIn(text: string): string[][] {
  const found: string[][] = [];
  for (const m of text.matchAll(/update-mirror/g)) {
    const at = m.index ?? 0;
    const before = at === 0 ? "" : (text[at - 1] as string);
    if (before !== "" && !/[\s"'(/\\&;|=]/.test(before)) continue;
    const rest = /^update-mirror(?:\.cmd)?"?((?:[ \t]+[^\s;|)`]+)*)/.exec(text.slice(at));
    const words = beforeShellOperators(tokens(rest?.[1] ?? ""));
    const first = words[0];
    if (first === undefined || first === "update-mirror" || (!/^[a-z]+$/.test(first) && first !== "--help" && first !== "--version")) continue;
    found.push(words);
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------
// systemd units

type Unit = Map<string, [key: string, value: string][]>;

/** systemd's unit file syntax: [Section] headers, Key=Value lines, # and ; comments, backslash continuations. */
function parseUnit(text: string, file: string): Unit {
  const unit: Unit = new Map();
  let section: [string, string][] | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] as string).trim();
    const number = i + 1;
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    while (line.endsWith("\\") && i + 1 < lines.length) line = `${line.slice(0, -1)} ${(lines[++i] as string).trim()}`;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      const name = header[1] as string;
      if (unit.has(name)) throw new Error(`${file}:${number}: section [${name}] appears twice`);
      section = [];
      unit.set(name, section);
      continue;
    }
    const setting = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!setting) throw new Error(`${file}:${number}: neither a [Section] nor Key=Value: ${line}`);
    if (!section) throw new Error(`${file}:${number}: ${setting[1]}= before any [Section]`);
    section.push([setting[1] as string, setting[2] as string]);
  }
  return unit;
}

function values(unit: Unit, section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

/** The setting's value (the last one given, as systemd takes it), or undefined. */
function value(unit: Unit, section: string, key: string): string | undefined {
  return values(unit, section, key).at(-1);
}

/** The keys these templates may use, per section: a misspelt key fails even where systemd-analyze is missing. */
const KNOWN_KEYS: Record<string, string[]> = {
  Unit: ["Description", "Documentation", "Wants", "Requires", "After", "Before", "RequiresMountsFor", "StartLimitIntervalSec", "StartLimitBurst"],
  Service: [
    "Type",
    "User",
    "Group",
    "ExecStart",
    "ExecReload",
    "Environment",
    "EnvironmentFile",
    "WorkingDirectory",
    "UMask",
    "KillMode",
    "KillSignal",
    "TimeoutStopSec",
    "TimeoutStartSec",
    "SuccessExitStatus",
    "Restart",
    "RestartSec",
    "RestartPreventExitStatus",
    "LimitNOFILE",
    "AmbientCapabilities",
    "NoNewPrivileges",
    "ProtectSystem",
    "ReadWritePaths",
    "ReadOnlyPaths",
    "ProtectHome",
    "PrivateTmp",
    "PrivateDevices",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "RestrictSUIDSGID",
    "RestrictRealtime",
    "LockPersonality",
    "Nice",
    "IOSchedulingClass",
  ],
  Timer: ["OnCalendar", "Persistent", "RandomizedDelaySec", "AccuracySec", "Unit"],
  Install: ["WantedBy"],
};

/** systemd time spans ("20min", "1h 30min", "90", "30s") in seconds. */
function timespanSeconds(text: string): number {
  const units: Record<string, number> = { "": 1, s: 1, sec: 1, second: 1, seconds: 1, m: 60, min: 60, minute: 60, minutes: 60, h: 3600, hr: 3600, hour: 3600, hours: 3600, d: 86_400, day: 86_400, days: 86_400 };
  let total = 0;
  const rest = text.trim().replace(/(\d+)\s*([a-z]*)\s*/g, (_, n: string, unit: string) => {
    const factor = units[unit];
    if (factor === undefined) throw new Error(`not a systemd time span: ${text}`);
    total += Number(n) * factor;
    return "";
  });
  if (rest !== "" || text.trim() === "") throw new Error(`not a systemd time span: ${text}`);
  return total;
}

/** Hardening every service template shares; `writable` is what its ReadWritePaths must list. */
function expectHardened(unit: Unit, file: string, writable: string[]): void {
  expect(value(unit, "Service", "User"), `${file}: User=`).toBe("update-mirror");
  expect(value(unit, "Service", "NoNewPrivileges"), `${file}: NoNewPrivileges=`).toBe("yes");
  expect(value(unit, "Service", "ProtectSystem"), `${file}: ProtectSystem=`).toBe("strict");
  expect(value(unit, "Service", "PrivateTmp"), `${file}: PrivateTmp=`).toBe("yes");
  expect(["yes", "read-only", "tmpfs"], `${file}: ProtectHome=`).toContain(value(unit, "Service", "ProtectHome"));
  const paths = values(unit, "Service", "ReadWritePaths").flatMap((v) => v.split(/\s+/)).map((p) => p.replace(/^-/, ""));
  expect(paths.sort(), `${file}: ReadWritePaths=`).toEqual([...writable].sort());
  // V8 needs writable+executable memory for its JIT: this setting would make node abort at start.
  expect(value(unit, "Service", "MemoryDenyWriteExecute"), `${file}: MemoryDenyWriteExecute=`).toBeUndefined();
  // SIGTERM to the main process only: update-mirror passes one on to the job's process itself, and a second one stops it at once.
  expect(value(unit, "Service", "KillMode"), `${file}: KillMode= (see the template's comment)`).toBe("mixed");
}

function unknownKeys(unit: Unit, file: string): string[] {
  const problems: string[] = [];
  for (const [section, settings] of unit) {
    const known = KNOWN_KEYS[section];
    if (!known) problems.push(`${file}: unknown section [${section}]`);
    else for (const [key] of settings) if (!known.includes(key)) problems.push(`${file}: [${section}] ${key}= is not a key this test knows (a typo? if systemd knows it, add it to KNOWN_KEYS)`);
  }
  return problems;
}

/** ExecStart= split into the program and its arguments; the program must be update-mirror. */
function execStart(unit: Unit, file: string): string[] {
  const line = value(unit, "Service", "ExecStart");
  if (line === undefined) throw new Error(`${file}: no ExecStart=`);
  const words = tokens(line);
  expect(words[0], `${file}: ExecStart= runs update-mirror by its absolute path`).toMatch(/^\/[^\s]*\/update-mirror$/);
  return words;
}

const UNITS = ["update-mirror@.service", "update-mirror@.timer", "update-mirror-daemon.service", "update-mirror-serve.service"];

describe("systemd units", () => {
  it("parse, and use only keys this test knows", () => {
    const problems = UNITS.flatMap((file) => unknownKeys(parseUnit(template(file), file), file));
    expect(problems).toEqual([]);
  });

  it("update-mirror@.service runs `run %i --scheduled` once, hardened, stopping cleanly", async () => {
    const file = "update-mirror@.service";
    const unit = parseUnit(template(file), file);
    expect(value(unit, "Service", "Type")).toBe("oneshot");
    const words = execStart(unit, file);
    expect(words.slice(1)).toEqual(["run", "%i", "--scheduled"]);
    expect(await commandLineProblems(words.slice(1), file)).toEqual([]);
    expectHardened(unit, file, ["/srv/mirror", "/var/lib/update-mirror", "/var/log/update-mirror"]);
    expect(value(unit, "Service", "KillSignal")).toBe("SIGTERM");
    expect(timespanSeconds(value(unit, "Service", "TimeoutStopSec") ?? ""), "TimeoutStopSec must let a file finish").toBeGreaterThanOrEqual(300);
    expect(values(unit, "Service", "SuccessExitStatus").flatMap((v) => v.split(/\s+/))).toContain(String(EXIT.stopped));
    expect(unit.has("Install"), "a template service is started by its timer, not enabled").toBe(false);
  });

  it("update-mirror@.timer: a calendar, Persistent, a random delay, and why not the job's randomDelay too", () => {
    const file = "update-mirror@.timer";
    const text = template(file);
    const unit = parseUnit(text, file);
    expect(values(unit, "Timer", "OnCalendar").length).toBeGreaterThan(0);
    expect(value(unit, "Timer", "Persistent")).toBe("true");
    expect(timespanSeconds(value(unit, "Timer", "RandomizedDelaySec") ?? "")).toBeGreaterThan(0);
    // Unit= left out: the timer starts the service of the same instance name.
    expect(value(unit, "Timer", "Unit")).toBeUndefined();
    expect(value(unit, "Install", "WantedBy")).toBe("timers.target");
    expect(text).toMatch(/randomDelay/);
    expect(text).toMatch(/not both/);
  });

  it.skipIf(!systemdAnalyze)("update-mirror@.timer's OnCalendar is a calendar systemd understands", () => {
    const unit = parseUnit(template("update-mirror@.timer"), "update-mirror@.timer");
    for (const calendar of values(unit, "Timer", "OnCalendar")) {
      const r = spawnSync(systemdAnalyze as string, ["calendar", calendar], { encoding: "utf8" });
      expect(r.status, `systemd-analyze calendar '${calendar}': ${r.stderr}`).toBe(0);
    }
  });

  it("update-mirror-daemon.service runs `daemon`, reloads on SIGHUP, stops on SIGTERM, restarts after a crash", async () => {
    const file = "update-mirror-daemon.service";
    const unit = parseUnit(template(file), file);
    expect(value(unit, "Service", "Type")).toBe("simple");
    const words = execStart(unit, file);
    expect(words.slice(1)).toEqual(["daemon"]);
    expect(await commandLineProblems(words.slice(1), file)).toEqual([]);
    expect(value(unit, "Service", "ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expect(value(unit, "Service", "KillSignal")).toBe("SIGTERM");
    expect(timespanSeconds(value(unit, "Service", "TimeoutStopSec") ?? ""), "TimeoutStopSec must let a file finish").toBeGreaterThanOrEqual(300);
    expect(value(unit, "Service", "Restart")).toBe("on-failure");
    // A config error at start fails again at every restart.
    expect(values(unit, "Service", "RestartPreventExitStatus").flatMap((v) => v.split(/\s+/))).toContain(String(EXIT.usage));
    expectHardened(unit, file, ["/srv/mirror", "/var/lib/update-mirror", "/var/log/update-mirror"]);
    expect(value(unit, "Install", "WantedBy")).toBe("multi-user.target");
  });

  it("update-mirror-serve.service runs `serve` read-only on the mirror, with its log left to logrotate's copytruncate", async () => {
    const file = "update-mirror-serve.service";
    const unit = parseUnit(template(file), file);
    expect(value(unit, "Service", "Type")).toBe("simple");
    const words = execStart(unit, file);
    expect(words[1]).toBe("serve");
    expect(await commandLineProblems(words.slice(1), file)).toEqual([]);
    expect(value(unit, "Service", "ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expectHardened(unit, file, ["/var/log/update-mirror"]);
    // serve opens its log file once: rotation off, and the logrotate template rotates that file with copytruncate.
    const logFile = words[words.indexOf("--log-file") + 1] as string;
    expect(words[words.indexOf("--log-max-size") + 1]).toBe("off");
    const stanza = logrotateStanzas(template("update-mirror.logrotate")).find((s) => s.paths.includes(logFile));
    expect(stanza?.directives.map(([d]) => d), `update-mirror.logrotate rotates ${logFile}`).toContain("copytruncate");
  });

  it.skipIf(!systemdAnalyze)("pass `systemd-analyze verify` (update-mirror's path pointed at a real executable)", async () => {
    const { dir, cleanup } = await scratchDir("units");
    try {
      // verify checks that ExecStart's program exists and is executable: a wrapper around this checkout's CLI.
      const wrapper = join(dir, "update-mirror");
      await writeFile(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
      await chmod(wrapper, 0o755);
      const files: string[] = [];
      for (const name of UNITS) {
        const instance = name.replace("@.", "@nightly-sync.");
        await writeFile(join(dir, instance), template(name).replaceAll("/usr/bin/update-mirror", wrapper));
        files.push(join(dir, instance));
      }
      const r = spawnSync(systemdAnalyze as string, ["verify", ...files], { encoding: "utf8", env: { ...process.env, SYSTEMD_LOG_COLOR: "0" } });
      const ours = r.stderr.split("\n").filter((line) => line.includes("update-mirror"));
      const others = r.stderr.split("\n").filter((line) => line.trim() !== "" && !line.includes("update-mirror"));
      if (others.length > 0) console.warn(`systemd-analyze verify said about other units:\n${others.join("\n")}`);
      expect(ours).toEqual([]);
      expect(r.status, r.stderr).toBe(0);
    } finally {
      await cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// cron

/** Checks one cron time field: `*`, numbers, names, ranges, steps and lists within [min, max]. */
function cronFieldProblems(field: string, what: string, min: number, max: number, names: string[] = []): string[] {
  const number = (text: string): number | undefined => {
    const named = names.indexOf(text.toLowerCase());
    if (named !== -1) return named + min;
    return /^\d+$/.test(text) ? Number(text) : undefined;
  };
  const problems: string[] = [];
  for (const part of field.split(",")) {
    const m = /^(\*|([^-/]+)(?:-([^-/]+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) {
      problems.push(`${what} "${part}" is not cron syntax`);
      continue;
    }
    if (m[4] !== undefined && Number(m[4]) < 1) problems.push(`${what} step "${m[4]}" must be at least 1`);
    if (m[1] === "*") continue;
    for (const end of [m[2], m[3]]) {
      if (end === undefined) continue;
      const n = number(end);
      if (n === undefined || n < min || n > max) problems.push(`${what} "${end}" is not within ${min}-${max}`);
    }
  }
  return problems;
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

interface CronJob {
  line: number;
  schedule: string;
  user: string;
  command: string;
}

/** An /etc/cron.d file: variable lines and job lines (five time fields or an @nickname, a user, a command). */
function parseCronD(text: string, file: string): { jobs: CronJob[]; env: Record<string, string>; problems: string[] } {
  const jobs: CronJob[] = [];
  const env: Record<string, string> = {};
  const problems: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    const where = `${file}:${i + 1}`;
    if (line === "" || line.startsWith("#")) return;
    const variable = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (variable) {
      env[variable[1] as string] = variable[2] as string;
      return;
    }
    const nickname = /^(@(?:reboot|yearly|annually|monthly|weekly|daily|midnight|hourly))\s+(\S+)\s+(.+)$/.exec(line);
    if (nickname) {
      jobs.push({ line: i + 1, schedule: nickname[1] as string, user: nickname[2] as string, command: nickname[3] as string });
      return;
    }
    const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.+)$/.exec(line);
    if (!m) {
      problems.push(`${where}: neither a variable nor "m h dom mon dow user command": ${line}`);
      return;
    }
    const [minute, hour, dom, month, dow] = m.slice(1, 6) as [string, string, string, string, string];
    problems.push(
      ...cronFieldProblems(minute, `${where}: minute`, 0, 59),
      ...cronFieldProblems(hour, `${where}: hour`, 0, 23),
      ...cronFieldProblems(dom, `${where}: day of month`, 1, 31),
      ...cronFieldProblems(month, `${where}: month`, 1, 12, MONTHS),
      ...cronFieldProblems(dow, `${where}: day of week`, 0, 7, DAYS),
    );
    jobs.push({ line: i + 1, schedule: [minute, hour, dom, month, dow].join(" "), user: m[6] as string, command: m[7] as string });
  });
  return { jobs, env, problems };
}

describe("update-mirror.cron", () => {
  const file = "update-mirror.cron";

  it("is an /etc/cron.d file whose lines run `update-mirror run JOB --scheduled` as update-mirror, without flock", async () => {
    const text = template(file);
    expect(text.endsWith("\n"), "cron ignores a last line without a newline").toBe(true);
    const { jobs, env, problems } = parseCronD(text, file);
    expect(problems).toEqual([]);
    expect(jobs.length).toBeGreaterThan(0);
    expect(env.PATH?.split(":")).toEqual(expect.arrayContaining(["/usr/bin", "/usr/local/bin"]));
    for (const job of jobs) {
      const where = `${file}:${job.line}`;
      expect(() => new Cron(job.schedule, { paused: true }).stop(), `${where}: ${job.schedule}`).not.toThrow();
      expect(job.user, where).toBe("update-mirror");
      const words = beforeShellOperators(tokens(job.command));
      expect(words[0], `${where}: runs update-mirror`).toMatch(/(^|\/)update-mirror$/);
      expect(words.slice(1, 2), where).toEqual(["run"]);
      expect(words, where).toContain("--scheduled");
      expect(job.command, `${where}: update-mirror locks the mirror itself`).not.toMatch(/\bflock\b/);
      expect(await commandLineProblems(words.slice(1), where)).toEqual([]);
    }
    // What the comments promise: the install name without a dot, and the lock that makes flock unneeded.
    expect(text).toMatch(/\/etc\/cron\.d\/update-mirror\b(?!\.)/);
    expect(text).toContain(`exits ${EXIT.locked}`);
  });
});

// ---------------------------------------------------------------------------------------------------
// The Task Scheduler XML

/** Well-formedness problems of an XML document (elements, attributes, comments, PIs, CDATA, entity references); [] when well-formed. */
function xmlProblems(text: string): string[] {
  const problems: string[] = [];
  const lineOf = (at: number) => text.slice(0, at).split("\n").length;
  const badEntity = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  const stack: string[] = [];
  let rootSeen = false;
  let i = 0;
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  while (i < text.length) {
    const lt = text.indexOf("<", i);
    const chunk = lt === -1 ? text.slice(i) : text.slice(i, lt);
    if (badEntity.test(chunk)) problems.push(`line ${lineOf(i)}: a bare & (write &amp;)`);
    if (stack.length === 0 && chunk.trim() !== "") problems.push(`line ${lineOf(i)}: text outside the root element`);
    if (lt === -1) break;
    if (text.startsWith("<!--", lt)) {
      const end = text.indexOf("-->", lt + 4);
      if (end === -1) {
        problems.push(`line ${lineOf(lt)}: comment never closed`);
        break;
      }
      const body = text.slice(lt + 4, end);
      if (body.includes("--") || body.endsWith("-")) problems.push(`line ${lineOf(lt)}: "--" inside a comment`);
      i = end + 3;
      continue;
    }
    if (text.startsWith("<?", lt)) {
      const end = text.indexOf("?>", lt);
      if (end === -1) {
        problems.push(`line ${lineOf(lt)}: processing instruction never closed`);
        break;
      }
      if (/^<\?xml\s/i.test(text.slice(lt, lt + 6)) && text.slice(0, lt).replace(/^\ufeff/, "") !== "") problems.push(`line ${lineOf(lt)}: the XML declaration must come first`);
      i = end + 2;
      continue;
    }
    if (text.startsWith("<![CDATA[", lt)) {
      const end = text.indexOf("]]>", lt);
      if (stack.length === 0) problems.push(`line ${lineOf(lt)}: CDATA outside the root element`);
      if (end === -1) {
        problems.push(`line ${lineOf(lt)}: CDATA never closed`);
        break;
      }
      i = end + 3;
      continue;
    }
    if (text.startsWith("<!", lt)) {
      problems.push(`line ${lineOf(lt)}: a DOCTYPE or declaration (not expected here)`);
      break;
    }
    let gt = lt + 1;
    let quote: string | undefined;
    for (; gt < text.length; gt++) {
      const c = text[gt];
      if (quote) {
        if (c === quote) quote = undefined;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === ">" || c === "<") break;
    }
    if (text[gt] !== ">") {
      problems.push(`line ${lineOf(lt)}: tag never closed`);
      break;
    }
    const tag = text.slice(lt + 1, gt);
    if (tag.startsWith("/")) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (open !== name) problems.push(`line ${lineOf(lt)}: </${name}> closes ${open === undefined ? "nothing" : `<${open}>`}`);
    } else {
      const selfClosing = tag.endsWith("/");
      const m = /^([A-Za-z_:][-\w.:]*)((?:\s+[A-Za-z_:][-\w.:]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*$/.exec(selfClosing ? tag.slice(0, -1) : tag);
      if (!m) problems.push(`line ${lineOf(lt)}: malformed tag <${tag}>`);
      else {
        const attributes = [...(m[2] ?? "").matchAll(/([A-Za-z_:][-\w.:]*)\s*=\s*("[^"]*"|'[^']*')/g)];
        const names = attributes.map((a) => a[1]);
        if (new Set(names).size !== names.length) problems.push(`line ${lineOf(lt)}: an attribute given twice in <${m[1]}>`);
        if (attributes.some((a) => badEntity.test(a[2] as string))) problems.push(`line ${lineOf(lt)}: a bare & in an attribute of <${m[1]}>`);
        if (stack.length === 0) {
          if (rootSeen) problems.push(`line ${lineOf(lt)}: a second root element <${m[1]}>`);
          rootSeen = true;
        }
        if (!selfClosing) stack.push(m[1] as string);
      }
    }
    i = gt + 1;
  }
  if (stack.length > 0) problems.push(`<${stack.join("> <")}> never closed`);
  if (!rootSeen) problems.push("no root element");
  return problems;
}

const XML_ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** The text of every <name> element (no nested elements), entities decoded, comments ignored. */
function elementTexts(xml: string, name: string): string[] {
  const bare = xml.replace(/<!--[\s\S]*?-->/g, "");
  return [...bare.matchAll(new RegExp(`<${name}(?:\\s[^>]*)?>([^<]*)</${name}>`, "g"))].map((m) =>
    (m[1] as string).replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => XML_ENTITIES[e] as string),
  );
}

function oneElement(xml: string, name: string): string {
  const found = elementTexts(xml, name);
  expect(found, `exactly one <${name}>`).toHaveLength(1);
  return found[0] as string;
}

describe("update-mirror-task.xml", () => {
  const file = "update-mirror-task.xml";

  it("is well-formed XML", () => {
    expect(xmlProblems(template(file))).toEqual([]);
  });

  it("the well-formedness check catches what Task Scheduler would refuse", () => {
    expect(xmlProblems("<a><b></a></b>")).not.toEqual([]);
    expect(xmlProblems("<a>x & y</a>")).not.toEqual([]);
    expect(xmlProblems("<!-- run --scheduled --><a/>")).not.toEqual([]);
    expect(xmlProblems('<a b="1" b="2"/>')).not.toEqual([]);
    expect(xmlProblems("<a></a><b></b>")).not.toEqual([]);
    expect(xmlProblems('<?xml version="1.0"?>\n<a x="&amp;">&lt;ok&gt;<![CDATA[ & ]]></a>\n')).toEqual([]);
  });

  it.skipIf(!xmllint)("xmllint --noout accepts it", () => {
    const r = spawnSync(xmllint as string, ["--noout", join(TEMPLATES, file)], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
  });

  it("is a daily task with a random delay running node.exe on update-mirror's script: `run JOB --scheduled`", async () => {
    const xml = template(file);
    expect(xml).toMatch(/<Task version="1\.[2-9]" xmlns="http:\/\/schemas\.microsoft\.com\/windows\/2004\/02\/mit\/task">/);
    expect(oneElement(xml, "DaysInterval")).toBe("1");
    expect(oneElement(xml, "RandomDelay")).toMatch(/^P(\d+D)?T(\d+H)?(\d+M)?(\d+S)?$/);
    expect(Number.isNaN(Date.parse(oneElement(xml, "StartBoundary")))).toBe(false);
    expect(oneElement(xml, "StartWhenAvailable")).toBe("true");
    expect(oneElement(xml, "MultipleInstancesPolicy")).toBe("IgnoreNew");
    expect(oneElement(xml, "ExecutionTimeLimit")).toMatch(/^P(\d+D)?T(\d+H)?(\d+M)?(\d+S)?$/);
    expect(tokens(oneElement(xml, "Command"))).toEqual([expect.stringMatching(/\\node\.exe$/i)]);
    const args = tokens(oneElement(xml, "Arguments"));
    // The script npm installs: the package's name and its "bin" entry, in Windows form.
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { name: string; bin: Record<string, string> };
    const script = `\\node_modules\\${pkg.name}\\${(pkg.bin["update-mirror"] ?? "").replace(/^\.\//, "").replaceAll("/", "\\")}`;
    expect(args[0]).toMatch(new RegExp(`${escapeRegExp(script)}$`));
    expect(args.slice(1, 2)).toEqual(["run"]);
    expect(args).toContain("--scheduled");
    expect(await commandLineProblems(args.slice(1), `${file} <Arguments>`)).toEqual([]);
    // The comment explains the choice between the trigger's delay and the job's.
    expect(xml).toMatch(/randomDelay/);
    expect(xml).toMatch(/not\s+both/);
  });
});

// ---------------------------------------------------------------------------------------------------
// The PowerShell installer

/**
 * A lexical pass over a PowerShell script: brackets balanced outside strings and comments, strings and
 * block comments closed, no "$name:" in a double-quoted string (PowerShell reads it as a drive-qualified
 * variable and refuses the script). Returns the problems and the code with comments removed.
 */
function powershellLex(text: string): { problems: string[]; code: string } {
  const problems: string[] = [];
  const stack: { c: string; line: number }[] = [];
  const closing: Record<string, string> = { ")": "(", "]": "[", "}": "{" };
  let state: "code" | "single" | "double" | "block" = "code";
  let started = 0;
  let line = 1;
  let code = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "\n") line++;
    if (state === "block") {
      if (text.startsWith("#>", i)) {
        state = "code";
        i++;
      } else if (c === "\n") code += c;
      continue;
    }
    if (state === "single") {
      code += c;
      if (c === "'") {
        if (text[i + 1] === "'") code += text[++i];
        else state = "code";
      }
      continue;
    }
    if (state === "double") {
      code += c;
      if (c === "`") code += text[++i] ?? "";
      else if (c === '"') {
        if (text[i + 1] === '"') code += text[++i];
        else state = "code";
      } else if (c === "$") {
        const m = /^\$(\w+):(?!\w)/.exec(text.slice(i));
        if (m) problems.push(`line ${line}: "$${m[1]}:" in a double-quoted string is read as a drive-qualified variable (write \${${m[1]}}:)`);
      } else if (c === "\n") {
        // Strings may span lines; nothing to do.
      }
      continue;
    }
    if (text.startsWith("<#", i)) {
      state = "block";
      started = line;
      i++;
      continue;
    }
    if (c === "#") {
      while (i + 1 < text.length && text[i + 1] !== "\n") i++;
      continue;
    }
    code += c;
    if (c === "'") {
      state = "single";
      started = line;
    } else if (c === '"') {
      state = "double";
      started = line;
    } else if (c === "(" || c === "[" || c === "{") stack.push({ c, line });
    else if (c in closing) {
      const open = stack.pop();
      if (open?.c !== closing[c]) problems.push(`line ${line}: "${c}" closes ${open ? `"${open.c}" of line ${open.line}` : "nothing"}`);
    }
  }
  if (state !== "code") problems.push(`line ${started}: ${state === "block" ? "block comment" : "string"} never closed`);
  for (const open of stack) problems.push(`line ${open.line}: "${open.c}" never closed`);
  return { problems, code };
}

describe("install-task.ps1", () => {
  const file = "install-task.ps1";

  it("passes the lexical checks (which do catch a broken script)", () => {
    expect(powershellLex(template(file)).problems).toEqual([]);
    expect(powershellLex('if ($a) { throw "no $path: here" }').problems).not.toEqual([]);
    expect(powershellLex("function f { (1 + 2 }").problems).not.toEqual([]);
    expect(powershellLex("$a = 'open").problems).not.toEqual([]);
    expect(powershellLex("<# help\n$a = 1").problems).not.toEqual([]);
  });

  it("declares its parameters with help for each, registers the XML template, and passes `run JOB --scheduled`", async () => {
    const text = template(file);
    const { code } = powershellLex(text);
    const paramBlock = /^\[CmdletBinding\([^\n]*\)\]\s*\nparam\(([\s\S]*?)\n\)\n/m.exec(text);
    expect(paramBlock, "a [CmdletBinding()] param( ... ) block").not.toBeNull();
    const declared = [...(paramBlock?.[1] ?? "").matchAll(/\[[\w.]+\]\s*\$(\w+)/g)].map((m) => m[1]);
    expect(declared).toEqual(expect.arrayContaining(["JobName", "User", "Password", "At", "RandomDelay", "ConfigPath", "XmlPath"]));
    const documented = [...text.matchAll(/^\.PARAMETER\s+(\w+)\s*$/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual([...declared].sort());
    expect(text).toMatch(/^\.SYNOPSIS$/m);
    expect(text).toMatch(/^\.EXAMPLE$/m);
    expect(code).toMatch(/\(Join-Path \$PSScriptRoot 'update-mirror-task\.xml'\)/);
    expect(existsSync(join(TEMPLATES, "update-mirror-task.xml"))).toBe(true);
    expect(code).toMatch(/\bRegister-ScheduledTask\b/);
    // The job's command line as the script builds it: `run <JobName>` and options `run` has.
    const commandWord = /'"\{0\}" ([a-z]+) \{1\}/.exec(code);
    expect(commandWord?.[1], "the Arguments the script builds: '\"{0}\" run {1} ...' -f $cli, $JobName").toBe("run");
    const building = code.split("\n").filter((line) => /^\s*\$arguments\s*\+?=/.test(line));
    const flags = building.flatMap((line) => [...line.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]));
    expect(flags).toContain("--scheduled");
    expect(await commandLineProblems(["run", "JOB", ...flags], file)).toEqual([]);
    // What it tells the user to run.
    const told = code.split("\n").flatMap((line) => invocationsIn(line));
    expect(told.length).toBeGreaterThan(0);
    for (const args of told) expect(await commandLineProblems(args, file)).toEqual([]);
    // The XPaths it fills in exist in the template.
    const xml = template("update-mirror-task.xml");
    const filled = [...code.matchAll(/Get-TaskNode '([^']+)'/g)].map((m) => m[1] as string);
    expect(filled.length).toBeGreaterThan(5);
    for (const xpath of filled) expect(elementTexts(xml, xpath.split("/t:").at(-1) as string), `${xpath} in update-mirror-task.xml`).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------------
// logrotate

interface Stanza {
  paths: string[];
  directives: [name: string, ...args: string[]][];
}

const LOGROTATE_DIRECTIVES = new Set(["su", "daily", "weekly", "monthly", "yearly", "size", "maxsize", "minsize", "rotate", "maxage", "missingok", "notifempty", "ifempty", "compress", "nocompress", "delaycompress", "create", "copytruncate", "dateext", "dateformat", "sharedscripts"]);

function logrotateStanzas(text: string): Stanza[] {
  const stanzas: Stanza[] = [];
  let current: Stanza | undefined;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const open = /^(.+?)\s*\{$/.exec(line);
    if (open) {
      if (current) throw new Error(`update-mirror.logrotate:${i + 1}: a stanza inside a stanza`);
      current = { paths: (open[1] as string).split(/\s+/), directives: [] };
      return;
    }
    if (line === "}") {
      if (!current) throw new Error(`update-mirror.logrotate:${i + 1}: } without a stanza`);
      stanzas.push(current);
      current = undefined;
      return;
    }
    if (!current) throw new Error(`update-mirror.logrotate:${i + 1}: a directive outside a stanza: ${line}`);
    const [name, ...args] = line.split(/\s+/) as [string, ...string[]];
    if (!LOGROTATE_DIRECTIVES.has(name)) throw new Error(`update-mirror.logrotate:${i + 1}: unknown directive ${name}`);
    current.directives.push([name, ...args]);
  });
  if (current) throw new Error("update-mirror.logrotate: a stanza never closed");
  return stanzas;
}

describe("update-mirror.logrotate", () => {
  const file = "update-mirror.logrotate";

  it("rotates the jobs' log with create + delaycompress and serve's with copytruncate, as README.md says", () => {
    const stanzas = logrotateStanzas(template(file));
    const directives = (path: string) => stanzas.find((s) => s.paths.includes(path))?.directives.map(([d]) => d) ?? [];
    // The log file `init` writes into the config.
    const init = JSON.parse(withoutComments(readFileSync(join(REPO_ROOT, "config", "init.jsonc"), "utf8"))) as { logging: { file: string } };
    const jobs = directives(init.logging.file);
    expect(jobs, `a stanza for ${init.logging.file}`).toEqual(expect.arrayContaining(["create", "delaycompress", "su"]));
    expect(jobs).not.toContain("copytruncate");
    const serve = directives("/var/log/update-mirror/serve.log");
    expect(serve).toEqual(expect.arrayContaining(["copytruncate", "su"]));
    expect(serve).not.toContain("create");
    const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
    expect(readme).toMatch(/copytruncate/);
    expect(readme).toMatch(/delaycompress/);
  });

  it.skipIf(!logrotate)("logrotate reads it without an error and rotates both files (a copy pointed at a scratch folder)", async () => {
    const { dir, cleanup } = await scratchDir("logrotate");
    try {
      const logs = join(dir, "log");
      await mkdir(logs, { mode: 0o755 });
      const isRoot = process.getuid?.() === 0;
      const user = userInfo().username;
      const group = spawnSync("id", ["-gn"], { encoding: "utf8" }).stdout.trim();
      let text = template(file).replaceAll("/var/log/update-mirror", logs);
      // su needs root; as another user logrotate rotates what that user may write anyway.
      text = isRoot ? text.replaceAll(/\bupdate-mirror update-mirror\b/g, `${user} ${group}`) : text.replaceAll(/^\s*su .*$/gm, "").replaceAll(/\bcreate (\d+) update-mirror update-mirror\b/g, "create $1");
      expect(text).not.toMatch(/update-mirror update-mirror/);
      const conf = join(dir, "update-mirror.logrotate");
      await writeFile(conf, text, { mode: 0o644 });
      const state = join(dir, "state");
      const debug = spawnSync(logrotate as string, ["-d", "-s", state, conf], { encoding: "utf8" });
      const errors = `${debug.stdout}\n${debug.stderr}`.split("\n").filter((l) => /^error:/i.test(l));
      expect(errors).toEqual([]);
      expect(debug.status).toBe(0);

      await writeFile(join(logs, "update-mirror.log"), '{"msg":"job:done"}\n');
      await writeFile(join(logs, "serve.log"), '{"msg":"http:request"}\n');
      const forced = spawnSync(logrotate as string, ["-f", "-s", state, conf], { encoding: "utf8" });
      expect(forced.status, forced.stderr).toBe(0);
      expect(forced.stderr.split("\n").filter((l) => /^error:/i.test(l))).toEqual([]);
      // create: moved away (not compressed yet: delaycompress), a new empty file made with the mode given.
      expect(await readFile(join(logs, "update-mirror.log.1"), "utf8")).toBe('{"msg":"job:done"}\n');
      expect(statSync(join(logs, "update-mirror.log")).size).toBe(0);
      expect(statSync(join(logs, "update-mirror.log")).mode & 0o777).toBe(0o640);
      // copytruncate: copied, and the same file emptied in place.
      expect(await readFile(join(logs, "serve.log.1"), "utf8")).toBe('{"msg":"http:request"}\n');
      expect(statSync(join(logs, "serve.log")).size).toBe(0);
    } finally {
      await cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// The command lines of the templates, run for real against a scratch config

describe("the templates' command lines run", () => {
  let scratch: { dir: string; cleanup: () => Promise<void> };
  let env: NodeJS.ProcessEnv;
  let mirror: string;
  let logs: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    scratch = await scratchDir("templates-run");
    const up = join(scratch.dir, "up");
    mirror = join(scratch.dir, "mirror");
    logs = join(scratch.dir, "log");
    await writeTree(up, { "bases/daily.cvd": "daily\n", "bases/main.cvd": "main\n" });
    const config = join(scratch.dir, "config.json");
    await writeFile(
      config,
      JSON.stringify({
        logging: { file: join(logs, "update-mirror.log"), level: "info" },
        jobs: { "nightly-sync": { type: "sync", sources: [up], dest: mirror, schedule: "30 2 * * *", randomDelay: "1s" } },
      }),
    );
    // The templates rely on the default config location; $UPDATE_MIRROR_CONFIG points it here.
    env = { ...process.env, UPDATE_MIRROR_CONFIG: config };
  });
  afterAll(async () => {
    // Only those still running (a test that failed half-way): stop() waits for an exit event.
    for (const child of children) if (child.exitCode === null && child.signalCode === null) await childStopper(child, "SIGKILL", 1000)();
    await scratch?.cleanup();
  });

  /** Runs a template's update-mirror command line with this checkout's CLI in place of the installed one. */
  async function runLine(words: readonly string[], where: string): Promise<void> {
    expect(words[0], where).toMatch(/(^|[/\\])update-mirror(\.js)?$/);
    const r = await runCli(words.slice(1), { env });
    expect(r.code, `${where}: update-mirror ${words.slice(1).join(" ")}\n${r.stderr}`).toBe(0);
  }

  it("update-mirror@nightly-sync.service's ExecStart, the cron line and the task's Arguments each run the job", async () => {
    const unit = parseUnit(template("update-mirror@.service"), "update-mirror@.service");
    await runLine(execStart(unit, "update-mirror@.service").map((w) => w.replaceAll("%i", "nightly-sync")), "update-mirror@.service");
    const status = await runCli(["status", "--job", "nightly-sync"], { env });
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^UPDATE-MIRROR OK - /);

    for (const job of parseCronD(template("update-mirror.cron"), "update-mirror.cron").jobs) {
      await runLine(beforeShellOperators(tokens(job.command)), `update-mirror.cron:${job.line}`);
    }
    const args = tokens(oneElement(template("update-mirror-task.xml"), "Arguments"));
    await runLine(args, "update-mirror-task.xml");
    const history = await runCli(["history", "--job", "nightly-sync", "--json"], { env });
    expect(history.code).toBe(0);
    expect(history.stdout.trim().split("\n")).toHaveLength(3);
  });

  /** Starts a long-running template command; resolves once `ready` matched its output. */
  function start(words: readonly string[], ready: RegExp): Promise<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }> {
    const child = spawn(process.execPath, [BIN, ...words.slice(1)], { env, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let output = "";
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${words.join(" ")} did not print ${ready} within 20 s:\n${output}`)), 20_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString("utf8");
        if (ready.test(output)) {
          clearTimeout(timer);
          resolve({ child, output: () => output, exited });
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      void exited.then((code) => reject(new Error(`${words.join(" ")} exited ${code} before it was ready:\n${output}`)));
    });
  }

  /** Runs an ExecReload= line with $MAINPID filled in; /bin/kill must be there for the template to work at all. */
  function reload(unit: Unit, pid: number): void {
    const words = tokens(value(unit, "Service", "ExecReload") ?? "").map((w) => (w === "$MAINPID" ? String(pid) : w));
    expect(existsSync(words[0] as string), `${words[0]} exists (ExecReload runs it)`).toBe(true);
    const r = spawnSync(words[0] as string, words.slice(1), { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
  }

  async function until(what: string, check: () => boolean): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("update-mirror-daemon.service: ExecStart starts the daemon, ExecReload reloads its config, SIGTERM stops it with exit 0", async () => {
    const unit = parseUnit(template("update-mirror-daemon.service"), "update-mirror-daemon.service");
    const daemon = await start(execStart(unit, "update-mirror-daemon.service"), /nightly-sync next runs at/);
    const log = join(logs, "update-mirror.log");
    reload(unit, daemon.child.pid as number);
    await until("daemon:reloaded in the log", () => readFileSync(log, "utf8").includes('"msg":"daemon:reloaded"'));
    daemon.child.kill(value(unit, "Service", "KillSignal") as NodeJS.Signals);
    expect(await daemon.exited, daemon.output()).toBe(0);
    expect(readFileSync(log, "utf8")).toContain('"msg":"daemon:stopped"');
  });

  it("update-mirror-serve.service: ExecStart serves the mirror, ExecReload is taken, SIGTERM stops it with exit 0", async () => {
    const unit = parseUnit(template("update-mirror-serve.service"), "update-mirror-serve.service");
    const words = execStart(unit, "update-mirror-serve.service").map((w, i, all) => {
      if (all[i - 1] === "--port") return "0";
      if (all[i - 1] === "--host") return "127.0.0.1";
      return w.replace(/^\/srv\/mirror$/, mirror).replace(/^\/var\/log\/update-mirror\//, `${logs}/`);
    });
    const server = await start(words, /at http:\/\/127\.0\.0\.1:\d+\//);
    const url = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(server.output())?.[1] as string;
    const health = await fetch(`${url}.update-mirror/healthz`);
    expect(health.status).toBe(200);
    const file = await fetch(`${url}bases/daily.cvd`);
    expect(await file.text()).toBe("daily\n");
    reload(unit, server.child.pid as number);
    expect((await fetch(`${url}.update-mirror/healthz`)).status, "still serving after SIGHUP").toBe(200);
    server.child.kill(value(unit, "Service", "KillSignal") as NodeJS.Signals);
    expect(await server.exited, server.output()).toBe(0);
    expect(readFileSync(join(logs, "serve.log"), "utf8")).toContain('"path":"/bases/daily.cvd"');
  });
});

// ---------------------------------------------------------------------------------------------------
// The index, and the operations guide

describe("dist-templates/README.md", () => {
  it("lists every file of the folder, and only those", () => {
    const readme = template("README.md");
    const listed = [...readme.matchAll(/^\| \[([^\]]+)\]\(([^)]+)\) \|/gm)].map((m) => {
      expect(m[2]).toBe(m[1]);
      return m[1] as string;
    });
    const files = readdirSync(TEMPLATES).filter((f) => f !== "README.md");
    expect(listed.sort()).toEqual(files.sort());
  });
});

describe("docs/operations.md", () => {
  const doc = readFileSync(join(REPO_ROOT, "docs", "operations.md"), "utf8");

  /** Every place the text runs update-mirror: in fenced and indented code blocks (shell comments left out) and in `inline code`. */
  function invocations(): { args: string[]; where: string }[] {
    const snippets: { text: string; line: number }[] = [];
    let fenced = false;
    doc.split("\n").forEach((line, i) => {
      if (/^\s*```/.test(line)) {
        fenced = !fenced;
        return;
      }
      if (fenced || /^ {4}/.test(line)) snippets.push({ text: line.replace(/(^|\s)#(?![>\w]).*$/, ""), line: i + 1 });
      else for (const m of line.matchAll(/`([^`]+)`/g)) snippets.push({ text: m[1] as string, line: i + 1 });
    });
    return snippets.flatMap(({ text, line }) => invocationsIn(text).map((args) => ({ args, where: `docs/operations.md:${line}` })));
  }

  it("names only commands and options the CLI has", async () => {
    const found = invocations();
    expect(found.length).toBeGreaterThan(20);
    const problems: string[] = [];
    for (const { args, where } of found) problems.push(...(await commandLineProblems(args, where)));
    expect(problems).toEqual([]);
  });

  it("shows configs that validate, names dist-templates files that exist, and is linked from README.md", () => {
    const configs = [...doc.matchAll(/```jsonc\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    expect(configs.length).toBeGreaterThan(0);
    for (const config of configs) expect(() => validateConfig(JSON.parse(withoutComments(config)), "docs/operations.md")).not.toThrow();
    for (const m of doc.matchAll(/dist-templates\/([\w@.-]+[\w])/g)) expect(existsSync(join(TEMPLATES, m[1] as string)), m[0]).toBe(true);
    const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
    const documentation = readme.split("## Documentation")[1] ?? "";
    expect(documentation).toMatch(/\[docs\/operations\.md\]\(docs\/operations\.md\)/);
    expect(doc).toMatch(/README\.md#exit-codes/);
  });
});
