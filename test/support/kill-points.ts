// kill -9 of a real CLI run at seeded points of its event stream (mid-fetch, after the last file, inside the publish), shared by the kill tests.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { prng as mulberry32 } from "../../bench/random.js";
import { REPO_ROOT } from "./cli.js";

/** A deterministic PRNG in [0, 1) (bench/random.ts's mulberry32), so a failing seed can be run again as it was. */
export function prng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

export type KillMode = "after-some-files" | "after-last-file" | "at-publish-start" | "during-publish" | "after-random-ms" | "just-after-last-file";
export const MODES: KillMode[] = ["after-some-files", "after-last-file", "at-publish-start", "during-publish", "after-random-ms", "just-after-last-file"];

export interface Killed {
  events: { type: string; path?: string }[];
  killed: boolean;
  code: number | null;
  stderr: string;
  point: string;
}

/** Runs `command` (sync, pull) as a child with --json and SIGKILLs it at the point `mode` and the seed pick. */
export async function runAndKill(command: string, args: string[], mode: KillMode, random: () => number, env: NodeJS.ProcessEnv = process.env): Promise<Killed> {
  const child = spawn(process.execPath, [join(REPO_ROOT, "bin/update-mirror.js"), command, ...args, "--json"], { stdio: ["ignore", "pipe", "pipe"], env });
  const events: Killed["events"] = [];
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString("utf8");
  });
  let killed = false;
  let timer: NodeJS.Timeout | undefined;
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) {
      killed = child.kill("SIGKILL");
    }
  };
  const later = (ms: number) => {
    if (timer === undefined) timer = setTimeout(kill, ms);
  };
  // Decided up front from the seed, so the same seed kills at the same point of the run.
  const someDelay = Math.floor(random() * 30);
  const publishDelay = Math.floor(random() * 250);
  const randomMs = 250 + Math.floor(random() * 1500);
  const fraction = 0.1 + random() * 0.8;
  let point: string = mode;
  let total = Number.POSITIVE_INFINITY;
  let done = 0;
  if (mode === "after-random-ms") {
    later(randomMs);
    point = `${mode} ${randomMs}`;
  }
  const lines = createInterface({ input: child.stdout });
  lines.on("line", (line) => {
    const event = JSON.parse(line) as { type: string; path?: string; add?: number; update?: number };
    events.push(event);
    if (event.type === "plan:ready") total = (event.add ?? 0) + (event.update ?? 0);
    if (event.type === "file:done") done += 1;
    if (mode === "after-some-files" && event.type === "file:done" && done >= Math.max(1, Math.floor(total * fraction))) {
      point = `${mode} ${done}/${total} +${someDelay}ms`;
      later(someDelay);
    }
    if (mode === "after-last-file" && event.type === "file:done" && done === total) kill();
    if (mode === "just-after-last-file" && event.type === "file:done" && done === total) {
      point = `${mode} +${Math.floor(someDelay / 3)}ms`;
      later(Math.floor(someDelay / 3));
    }
    if (mode === "at-publish-start" && event.type === "publish:start") kill();
    if (mode === "during-publish" && event.type === "publish:start") {
      point = `${mode} +${publishDelay}ms`;
      later(publishDelay);
    }
  });
  const [code] = (await new Promise((resolve) => child.once("close", (c, s) => resolve([c, s])))) as [number | null, NodeJS.Signals | null];
  if (timer !== undefined) clearTimeout(timer);
  return { events, killed: killed && code === null, code, stderr, point };
}
