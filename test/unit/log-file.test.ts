// The rotating log file: size and age triggers, kept and pruned files, whole lines across processes, and a file moved, deleted or truncated under the writer.
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, truncateSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openLogFile, rotatedLogFiles } from "../../src/cli/log-file.js";
import { NotFoundError } from "../../src/core/errors.js";
import { REPO_ROOT, scratchDir } from "../support/cli.js";

let dir: string;
let cleanup: () => Promise<void>;
let file: string;
beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("log-file"));
  file = join(dir, "logs", "um.log");
});
afterEach(() => cleanup());

/** A pino-like line of exactly `bytes` bytes (newline included). */
function line(n: number, bytes = 100, extra: Record<string, unknown> = {}): string {
  const head = JSON.stringify({ level: 30, time: 1_700_000_000_000 + n, n, ...extra, pad: "" });
  return `${head.slice(0, -2)}${"x".repeat(bytes - head.length - 1)}"}\n`;
}
const read = (path: string) => readFileSync(path, "utf8");
/** Every line of the rotated files (oldest first) and then the current file. */
const allLines = (path: string) => [...rotatedLogFiles(path), path].flatMap((f) => read(f).split("\n").filter((l) => l !== ""));

/** A controllable clock for the age trigger and the check interval. */
function clock(start = Date.UTC(2026, 0, 1)) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("size trigger", () => {
  it("rotates before a line would take the file past the limit: every file whole, under the limit, nothing lost", () => {
    const log = openLogFile(file, { maxBytes: 1000, keep: 100 });
    const written = Array.from({ length: 95 }, (_, i) => line(i));
    for (const l of written) log.write(l);
    log.close();
    const rotated = rotatedLogFiles(file);
    expect(rotated.length).toBe(9);
    for (const f of [...rotated, file]) {
      const text = read(f);
      expect(text.length).toBeLessThanOrEqual(1000);
      expect(text.endsWith("\n")).toBe(true);
      for (const l of text.split("\n").filter((x) => x !== "")) expect(() => JSON.parse(l)).not.toThrow();
    }
    // Oldest first by name, so reading them in order gives the lines in order.
    expect(allLines(file).join("\n")).toBe(written.map((l) => l.slice(0, -1)).join("\n"));
    expect(read(file)).toBe(written.slice(90).join(""));
  });

  it("names rotated files by UTC time and pid, unique even within one millisecond", () => {
    const c = clock(Date.UTC(2026, 2, 1, 14, 25, 1, 123));
    const log = openLogFile(file, { maxBytes: 1000, keep: 100, now: c.now });
    for (let i = 0; i < 40; i++) log.write(line(i));
    log.close();
    const names = rotatedLogFiles(file).map((f) => f.slice(file.length));
    expect(names).toEqual([`.20260301T142501.123Z-${process.pid}`, `.20260301T142501.124Z-${process.pid}`, `.20260301T142501.125Z-${process.pid}`]);
  });

  it("writes a line longer than the limit whole, into a file of its own", () => {
    const log = openLogFile(file, { maxBytes: 1000, keep: 100 });
    log.write(line(0));
    log.write(line(1, 2500));
    log.write(line(2));
    log.close();
    const rotated = rotatedLogFiles(file);
    expect(rotated.map(read)).toEqual([line(0), line(1, 2500)]);
    expect(read(file)).toBe(line(2));
  });

  it("rotates a file already over the limit when it is opened", () => {
    mkdirSync(join(dir, "logs"));
    writeFileSync(file, line(0, 3000));
    openLogFile(file, { maxBytes: 1000 }).close();
    expect(rotatedLogFiles(file).map(read)).toEqual([line(0, 3000)]);
    expect(read(file)).toBe("");
  });
});

describe("keeping and pruning", () => {
  it("keeps the newest --log-keep rotated files", () => {
    const log = openLogFile(file, { maxBytes: 1000, keep: 2 });
    const written = Array.from({ length: 60 }, (_, i) => line(i));
    for (const l of written) log.write(l);
    log.close();
    const rotated = rotatedLogFiles(file);
    expect(rotated).toHaveLength(2);
    expect(rotated.map(read).join("")).toBe(written.slice(30, 50).join(""));
    expect(read(file)).toBe(written.slice(50).join(""));
  });

  it("deletes rotated files whose last line is older than --log-max-age, at open, and leaves other files alone", () => {
    mkdirSync(join(dir, "logs"));
    const day = 86_400_000;
    const c = clock();
    const old = `${file}.20251101T000000.000Z-1`;
    const recent = `${file}.20251230T000000.000Z-1`;
    const strangers = [`${file}.1`, `${file}.2.gz`, `${file}.20251101`, join(dir, "logs", "other.log.20251101T000000.000Z-1")];
    for (const f of [old, recent, ...strangers]) {
      writeFileSync(f, line(0));
      utimesSync(f, new Date(c.now() - 60 * day), new Date(c.now() - 60 * day));
    }
    utimesSync(recent, new Date(c.now() - 2 * day), new Date(c.now() - 2 * day));
    openLogFile(file, { maxAgeMs: 30 * day, now: c.now }).close();
    expect(rotatedLogFiles(file)).toEqual([recent]);
    for (const f of strangers) expect(statSync(f).isFile()).toBe(true);
  });

  it("rotates the current file once its first line is older than --log-max-age, so a quiet log ages out too", () => {
    const hour = 3_600_000;
    const c = clock();
    const log = openLogFile(file, { maxAgeMs: 24 * hour, now: c.now, checkIntervalMs: 0 });
    log.write(`${JSON.stringify({ level: 30, time: c.now(), msg: "first" })}\n`);
    c.advance(23 * hour);
    log.write(`${JSON.stringify({ level: 30, time: c.now(), msg: "second" })}\n`);
    expect(rotatedLogFiles(file)).toEqual([]);
    c.advance(2 * hour);
    log.write(`${JSON.stringify({ level: 30, time: c.now(), msg: "third" })}\n`);
    log.close();
    expect(rotatedLogFiles(file).map((f) => read(f).match(/"msg":"\w+"/g))).toEqual([['"msg":"first"', '"msg":"second"']]);
    expect(read(file)).toMatch(/"msg":"third"/);

    // A later process finds the first line's time in the file itself.
    c.advance(25 * hour);
    openLogFile(file, { maxAgeMs: 24 * hour, now: c.now }).close();
    expect(rotatedLogFiles(file)).toHaveLength(2);
    expect(read(file)).toBe("");
  });
});

describe("off (logrotate's job) and files changed under the writer", () => {
  it("never rotates without a size or age limit", () => {
    const log = openLogFile(file, {});
    for (let i = 0; i < 200; i++) log.write(line(i));
    log.close();
    expect(rotatedLogFiles(file)).toEqual([]);
    expect(statSync(file).size).toBe(200 * 100);
  });

  it("copes with copytruncate: the next line goes to the start of the truncated file, with no hole before it", () => {
    const log = openLogFile(file, {});
    log.write(line(0));
    log.write(line(1));
    truncateSync(file, 0);
    log.write(line(2));
    log.close();
    expect(read(file)).toBe(line(2));
  });

  it("follows a file moved away (logrotate's create) at its next check, by inode, without a signal", () => {
    const c = clock();
    const log = openLogFile(file, { now: c.now });
    log.write(line(0));
    renameSync(file, `${file}.1`);
    // Until the check is due, lines go on into the moved file: nothing is lost.
    c.advance(500);
    log.write(line(1));
    c.advance(600);
    log.write(line(2));
    log.close();
    expect(read(`${file}.1`)).toBe(line(0) + line(1));
    expect(read(file)).toBe(line(2));
  });

  it("makes the file again when it was deleted, and its folder too", () => {
    const log = openLogFile(file, { checkIntervalMs: 0 });
    log.write(line(0));
    unlinkSync(file);
    log.write(line(1));
    expect(read(file)).toBe(line(1));
    renameSync(join(dir, "logs"), join(dir, "logs.old"));
    log.write(line(2));
    log.close();
    expect(read(file)).toBe(line(2));
  });

  it("follows a rotation made by another writer of the same file, and does not rotate it again", () => {
    const a = openLogFile(file, { maxBytes: 1000, keep: 100, checkIntervalMs: 0 });
    const b = openLogFile(file, { maxBytes: 1000, keep: 100, checkIntervalMs: 0 });
    for (let i = 0; i < 30; i++) (i % 2 === 0 ? a : b).write(line(i));
    a.close();
    b.close();
    expect(rotatedLogFiles(file)).toHaveLength(2);
    expect(allLines(file).map((l) => (JSON.parse(l) as { n: number }).n)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it("keeps appending to the file when it cannot be rotated, says so once, and tries again later", () => {
    const c = clock(Date.UTC(2026, 2, 1, 14, 25, 1, 123));
    const problems: string[] = [];
    // The name the rotation will use is taken by a folder that is not empty, so the rename fails.
    const blocker = `${file}.20260301T142501.123Z-${process.pid}`;
    mkdirSync(blocker, { recursive: true });
    writeFileSync(join(blocker, "x"), "x");
    const log = openLogFile(file, { maxBytes: 1000, now: c.now, onProblem: (m) => problems.push(m) });
    for (let i = 0; i < 15; i++) log.write(line(i));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^log file .*um\.log: cannot rotate it to .*um\.log\.20260301T142501\.123Z-\d+: is a directory; lines go on being appended to it$/);
    expect(read(file)).toBe(Array.from({ length: 15 }, (_, i) => line(i)).join(""));
    c.advance(61_000);
    log.write(line(15));
    log.close();
    expect(rotatedLogFiles(file).filter((f) => f !== blocker).map(read)).toEqual([Array.from({ length: 15 }, (_, i) => line(i)).join("")]);
    expect(read(file)).toBe(line(15));
  });

  it("throws NotFoundError naming the file when it cannot be opened", () => {
    writeFileSync(join(dir, "not-a-folder"), "");
    expect(() => openLogFile(join(dir, "not-a-folder", "um.log"))).toThrow(NotFoundError);
    expect(() => openLogFile(join(dir, "not-a-folder", "um.log"))).toThrow(/log file .*not-a-folder\/um\.log/);
  });

  it("drops lines after close, without throwing", () => {
    const log = openLogFile(file, {});
    log.close();
    log.write(line(0));
    expect(read(file)).toBe("");
  });
});

describe("several processes appending and rotating one file", () => {
  it("never splits, interleaves or loses a line", async () => {
    const run = promisify(execFile);
    const writers = 4;
    const lines = 1000;
    // Lines of varied length up to 3 KiB, so a torn or interleaved write would show as a line that does not parse.
    const script = `
      import { openLogFile } from ${JSON.stringify(join(REPO_ROOT, "src/cli/log-file.ts"))};
      const log = openLogFile(${JSON.stringify(file)}, { maxBytes: 64 * 1024, keep: 1000, checkIntervalMs: 5 });
      const id = Number(process.argv[1]);
      for (let n = 0; n < ${lines}; n++) log.write(JSON.stringify({ id, n, pad: "y".repeat((n * 37 + id * 101) % 3000) }) + "\\n");
    `;
    await Promise.all(Array.from({ length: writers }, (_, id) => run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, String(id)], { cwd: REPO_ROOT })));
    const files = [...rotatedLogFiles(file), file];
    expect(files.length).toBeGreaterThan(10);
    const seen = Array.from({ length: writers }, () => [] as number[]);
    for (const f of files) {
      const text = read(f);
      expect(text === "" || text.endsWith("\n"), f).toBe(true);
      for (const l of text.split("\n").filter((x) => x !== "")) {
        const record = JSON.parse(l) as { id: number; n: number; pad: string };
        expect(record.pad.length).toBe((record.n * 37 + record.id * 101) % 3000);
        seen[record.id]?.push(record.n);
      }
    }
    // Every line is there exactly once; a writer's lines may trail into a file another writer just rotated, so order is checked per file set, not per file.
    for (const ns of seen) expect([...ns].sort((x, y) => x - y)).toEqual(Array.from({ length: lines }, (_, n) => n));
    expect(readdirSync(join(dir, "logs")).filter((n) => !n.startsWith("um.log"))).toEqual([]);
  });
});
