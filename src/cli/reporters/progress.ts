// Progress bar for interactive terminals: bytes, files, rate and ETA of the fetch phase.
import { Presets, SingleBar } from "cli-progress";
import type { EngineEvent } from "../../engine/events.js";
import { formatBytes, formatRate } from "../format.js";

/** Returns an event sink that drives a bar on `stream` (a TTY); lines from `log` are printed above it. */
export function createProgressBar(stream: NodeJS.WriteStream): { onEvent: (e: EngineEvent) => void; log: (line: string) => void } {
  let bar: SingleBar | undefined;
  let done = 0;
  let files = 0;
  let started = 0;
  let bytes = 0;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    log(line) {
      if (bar) stream.write("\r\x1b[2K");
      stream.write(`${line}\n`);
      bar?.render();
    },
    onEvent(event) {
      if (event.type === "plan:ready" && event.downloadBytes > 0) {
        files = event.add + event.update;
        bar = new SingleBar(
          {
            stream,
            // {total} is the bar's own (bytes), so the file count goes by another name.
            format: "{bar} {percentage}% | {done}/{files} files | {have} of {want} | {rate} | ETA {eta_formatted}",
            hideCursor: true,
            clearOnComplete: true,
            etaBuffer: 50,
          },
          Presets.shades_classic,
        );
        started = performance.now();
        bar.start(event.downloadBytes, 0, { done, files, have: "0 B", want: formatBytes(event.downloadBytes), rate: "" });
      } else if (event.type === "file:progress" && bar) {
        bytes += event.bytes;
        bar.update(bytes, { have: formatBytes(bytes), rate: formatRate(bytes, performance.now() - started) });
      } else if ((event.type === "file:done" || event.type === "file:failed") && bar) {
        done += 1;
        if (event.type === "file:done" && event.reused) bytes += event.size;
        bar.update(bytes, { done, have: formatBytes(bytes) });
      } else if (event.type === "publish:start" || event.type === "run:done") stop();
    },
  };
}
