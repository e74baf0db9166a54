// Picks how a run's events are shown: NDJSON with --json, a progress bar on a TTY, plain lines otherwise; always logged.
import type { Logger } from "pino";
import type { EngineEvent } from "../../engine/events.js";
import { plainLines } from "./plain.js";
import { createProgressBar } from "./progress.js";

export interface ReporterOptions {
  json: boolean;
  verbose: boolean;
  logger: Logger;
}

const DEBUG_ONLY = new Set<EngineEvent["type"]>(["file:progress", "file:start", "file:done"]);

/** Returns the engine's `emit`. With a progress bar (stderr is a TTY) lines print above it on stderr, else on stdout. */
export function createReporter(options: ReporterOptions): (event: EngineEvent) => void {
  const tty = process.stderr.isTTY === true && !options.json;
  const bar = tty ? createProgressBar(process.stderr) : undefined;
  const write = bar ? bar.log : (line: string) => process.stdout.write(`${line}\n`);
  let dryRun = false;
  return (event) => {
    if (event.type === "run:start") dryRun = event.dryRun;
    if (event.type !== "file:progress") {
      const level = DEBUG_ONLY.has(event.type) ? "debug" : event.type === "file:failed" ? "warn" : "info";
      const { type, ...fields } = event;
      options.logger[level]({ event: type, ...(type === "plan:ready" ? { ...fields, files: undefined } : fields) }, type);
    }
    if (options.json) {
      if (event.type !== "file:progress") process.stdout.write(`${JSON.stringify(event)}\n`);
      return;
    }
    bar?.onEvent(event);
    for (const line of plainLines(event, options.verbose)) write(line);
    if (dryRun && event.type === "plan:ready") for (const c of event.files) write(`  ${c.action.padEnd(6)} ${c.path} (${c.size} bytes)`);
  };
}
