// Stopping a child process politely, then firmly: shared by the test servers and the benches.
import type { ChildProcess } from "node:child_process";

/** Returns stop(): sends `signal` if the child still runs, SIGKILL after `graceMs`, and resolves once it has exited. */
export function childStopper(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): () => Promise<void> {
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
}
