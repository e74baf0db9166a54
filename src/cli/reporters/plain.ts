// Plain-text reporter: one line per noteworthy fact, for terminals, cron mail and journald.
import type { EngineEvent } from "../../engine/events.js";
import { formatBytes, formatRate, formatSeconds } from "../format.js";

/** Renders an event as zero or more lines; `verbose` adds one line per file. */
export function plainLines(event: EngineEvent, verbose: boolean): string[] {
  switch (event.type) {
    case "run:recovered":
      return [`finished the publish of version ${event.version} that an earlier run left interrupted`];
    case "run:drift":
      return [`${event.paths.length} file(s) changed since they were applied (first: ${event.paths[0]}); fetching them again`];
    case "source:probe":
      if (event.result === "error" || event.result === "refused" || event.result === "cooling-down") return [`source ${event.source}: ${event.result}: ${event.reason ?? ""}`];
      return verbose ? [`source ${event.source}: ${event.result}${event.version === undefined ? "" : ` (version ${event.version})`}`] : [];
    case "source:chosen":
      return [`using ${event.source}${event.version === undefined ? " (no manifest: listing it)" : ` (manifest version ${event.version})`}`];
    case "source:passed-over":
      return [`source ${event.source}: passed over: ${event.reason}`];
    case "run:restart":
      return [`starting over: ${event.reason}`];
    case "plan:ready":
      return [`plan: ${event.add} to add, ${event.update} to update, ${event.remove} to remove, ${event.keep} unchanged; up to ${formatBytes(event.downloadBytes)} to fetch`];
    case "file:retry":
      return [`retry ${event.attempt} of ${event.path} from ${event.source} in ${formatSeconds(event.delayMs)}: ${event.reason}`];
    case "file:failover":
      return [`${event.path}: giving up on ${event.from}: ${event.reason}`];
    case "file:failed":
      return [`FAILED ${event.path}: ${event.reason}`];
    case "file:done":
      return verbose ? [`${event.reused ? "staged" : "fetched"} ${event.path} (${formatBytes(event.size)}${event.reused ? "" : ` from ${event.source}`})`] : [];
    case "run:done": {
      const s = event.summary;
      const changes = `${s.added} added, ${s.updated} updated, ${s.removed} removed`;
      const moved = `${formatBytes(s.bytes)} fetched in ${formatSeconds(s.elapsedMs)} (${formatRate(s.bytes, s.elapsedMs)})`;
      if (s.result === "dry-run") return [`dry run: would apply ${changes}; nothing was changed`];
      if (s.result === "unchanged") return [`up to date at version ${s.version ?? "none"} (source ${s.source}); ${moved}`];
      const failed = s.result === "partial" ? `; ${s.failed} failed (kept as they were)` : "";
      if (s.result === "partial" && s.version === s.previousVersion) return [`nothing new could be published (source ${s.source})${failed}; ${moved}`];
      return [`published version ${s.version} (was ${s.previousVersion ?? "none"}) from ${s.source}: ${changes}${failed}; ${moved}`];
    }
    default:
      return [];
  }
}
