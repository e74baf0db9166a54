// Runs a user's hook command (--on-update, --on-error) through the shell, with a time limit, capturing what it prints.
import { spawn } from "node:child_process";
import type { RunSummary } from "../engine/events.js";

export interface HookResult {
  /** The exit code, or null when the hook was killed by a signal (or by the time limit). */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The end of what it printed on stdout and stderr, interleaved (at most 16 KiB). */
  output: string;
}

const KEEP_OUTPUT = 16 * 1024;
const KILL_GRACE_MS = 5_000;

/**
 * Runs `command` with the shell (sh -c, or cmd.exe on Windows) and `env` added to ours, stdin closed.
 * A hook running past `timeoutMs` gets SIGTERM, then SIGKILL. Never throws for what the hook does;
 * a hook that cannot be started at all resolves with exit code 127, as a shell would report it.
 */
export function runHook(command: string, env: Record<string, string>, timeoutMs: number): Promise<HookResult> {
  return new Promise((resolve) => {
    let output = "";
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-KEEP_OUTPUT);
    };
    const child = spawn(command, { shell: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env }, windowsHide: true });
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS).unref();
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      resolve({ exitCode: 127, signal: null, timedOut: false, output: `${output}${err.message}\n` });
    });
    child.on("close", (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ exitCode, signal, timedOut, output });
    });
  });
}

/** How a hook ended, for messages: "exited with 3", "was killed by SIGKILL", "ran past its time limit". */
export function describeHookEnd(result: HookResult): string {
  if (result.timedOut) return "ran past its time limit and was stopped";
  if (result.signal !== null) return `was killed by ${result.signal}`;
  return `exited with ${result.exitCode}`;
}

/** What a hook learns about a run's outcome, as environment variables (README: pull and jobs). */
export function summaryEnv(summary: RunSummary | undefined): Record<string, string> {
  const text = (v: number | string | null | undefined) => (v === null || v === undefined ? "" : String(v));
  return {
    UPDATE_MIRROR_OLD_VERSION: text(summary?.previousUpstreamVersion ?? summary?.previousVersion),
    UPDATE_MIRROR_NEW_VERSION: text(summary?.upstreamVersion ?? summary?.version),
    UPDATE_MIRROR_VERSION: text(summary?.version),
    UPDATE_MIRROR_SOURCE: text(summary?.source),
    UPDATE_MIRROR_ADDED: text(summary?.added),
    UPDATE_MIRROR_UPDATED: text(summary?.updated),
    UPDATE_MIRROR_REMOVED: text(summary?.removed),
    UPDATE_MIRROR_BYTES: text(summary?.bytes),
  };
}
