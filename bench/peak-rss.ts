// Peak resident memory of a child process: GNU time's %M when the child runs under it, else polled VmHWM.
import type { ChildProcess } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";

/**
 * Starts watching `child`. With `timeOutput` (the -o file of `/usr/bin/time -f %M`) the figure is read
 * from there at the end; otherwise /proc/PID/status is polled. Call the returned function once the
 * child has closed; it gives KiB, or null when nothing could be measured.
 */
export function watchPeakRss(child: ChildProcess, timeOutput: string | undefined): () => number | null {
  let polledKiB: number | null = null;
  const poll = timeOutput
    ? null
    : setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
          if (m?.[1]) polledKiB = Number(m[1]);
        } catch {
          // the process has gone (or /proc is not there): keep the last reading
        }
      }, 20);
  return () => {
    if (poll) clearInterval(poll);
    if (!timeOutput) return polledKiB;
    try {
      // GNU time puts "Command exited with non-zero status N" before the figure when the tool fails.
      const n = Number.parseInt(readFileSync(timeOutput, "utf8").trim().split("\n").pop() ?? "", 10);
      return Number.isFinite(n) ? n : null;
    } catch {
      return null;
    } finally {
      rmSync(timeOutput, { force: true });
    }
  };
}
