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

/**
 * NDJSON lines gathered and written once per turn of the event loop: a write to a pipe is synchronous,
 * and 80,000 of them (two per file) cost a second of a full sync's main thread.
 */
function ndjsonWriter(): (line: string) => void {
  let pending: string[] = [];
  const flush = () => {
    const lines = pending;
    pending = [];
    process.stdout.write(lines.join(""));
  };
  return (line) => {
    if (pending.length === 0) setImmediate(flush);
    pending.push(`${line}\n`);
  };
}

/** Returns the engine's `emit`. With a progress bar (stderr is a TTY) lines print above it on stderr, else on stdout. */
export function createReporter(options: ReporterOptions): (event: EngineEvent) => void {
  const tty = process.stderr.isTTY === true && !options.json;
  const bar = tty ? createProgressBar(process.stderr) : undefined;
  const write = bar ? bar.log : (line: string) => process.stdout.write(`${line}\n`);
  const ndjson = options.json ? ndjsonWriter() : undefined;
  let dryRun = false;
  return (event) => {
    if (event.type === "run:start") dryRun = event.dryRun;
    if (event.type !== "file:progress") {
      const level = DEBUG_ONLY.has(event.type) ? "debug" : event.type === "file:failed" ? "warn" : "info";
      // Checked first: building the record for a level that is off cost as much as logging it.
      if (options.logger.isLevelEnabled(level)) {
        const { type, ...fields } = event;
        options.logger[level]({ event: type, ...(type === "plan:ready" ? { ...fields, files: undefined } : fields) }, type);
      }
    }
    if (ndjson) {
      if (event.type !== "file:progress") ndjson(JSON.stringify(event));
      return;
    }
    bar?.onEvent(event);
    for (const line of plainLines(event, options.verbose)) write(line);
    if (dryRun && event.type === "plan:ready") for (const c of event.files) write(`  ${c.action.padEnd(6)} ${c.path} (${c.size} bytes)`);
  };
}
