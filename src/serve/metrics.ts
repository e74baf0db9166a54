// Counters for /.update-mirror/metrics, summable across worker processes, and their Prometheus text exposition (format 0.0.4).
import type { Snapshot } from "./snapshot.js";

/** What one server process counts; counters of several workers add up field by field. */
export interface ProcessCounters {
  /** [status code, responses, body bytes], one row per status seen. */
  statuses: [number, number, number][];
  openConnections: number;
  cachedFiles: number;
  cachedBytes: number;
  hashChecks: number;
  reloads: number;
  loadFailures: number;
}

/** What the metrics page shows. */
export interface MetricsState {
  snapshot: Snapshot;
  nowMs: number;
  healthy: boolean;
  /** Server processes whose counters are included. */
  processes: number;
  counters: ProcessCounters;
}

/** Response counters by status code. */
export interface StatusCounter {
  /** Counts one finished (or aborted) response and the body bytes sent. */
  record(status: number, bodyBytes: number): void;
  /** The counts so far, as ProcessCounters.statuses rows. */
  rows(): [number, number, number][];
}

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export function createStatusCounter(): StatusCounter {
  const byStatus = new Map<number, [number, number]>();
  return {
    record(status, bodyBytes) {
      const counter = byStatus.get(status);
      if (counter === undefined) byStatus.set(status, [1, bodyBytes]);
      else {
        counter[0] += 1;
        counter[1] += bodyBytes;
      }
    },
    rows: () => [...byStatus].map(([code, [requests, bytes]]): [number, number, number] => [code, requests, bytes]),
  };
}

/** Adds up the counters of several processes. */
export function sumCounters(all: readonly ProcessCounters[]): ProcessCounters {
  const statuses = new Map<number, [number, number]>();
  const total: ProcessCounters = { statuses: [], openConnections: 0, cachedFiles: 0, cachedBytes: 0, hashChecks: 0, reloads: 0, loadFailures: 0 };
  for (const c of all) {
    for (const [code, requests, bytes] of c.statuses) {
      const row = statuses.get(code) ?? [0, 0];
      statuses.set(code, [row[0] + requests, row[1] + bytes]);
    }
    total.openConnections += c.openConnections;
    total.cachedFiles += c.cachedFiles;
    total.cachedBytes += c.cachedBytes;
    total.hashChecks += c.hashChecks;
    total.reloads += c.reloads;
    total.loadFailures += c.loadFailures;
  }
  total.statuses = [...statuses].map(([code, [requests, bytes]]): [number, number, number] => [code, requests, bytes]);
  return total;
}

function metric(lines: string[], name: string, help: string, type: "gauge" | "counter", value: number): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${Number.isFinite(value) ? value : 0}`);
}

/** The metrics page: manifest gauges from the snapshot, everything else from the (summed) counters. */
export function renderMetrics(state: MetricsState): string {
  const s = state.snapshot;
  const c = state.counters;
  const lines: string[] = [];
  metric(lines, "update_mirror_manifest_version", "Version of the manifest being served.", "gauge", s.version);
  metric(lines, "update_mirror_manifest_age_seconds", "Seconds since the manifest being served was created.", "gauge", Math.max(0, Math.floor((state.nowMs - s.createdMs) / 1000)));
  metric(lines, "update_mirror_manifest_files", "Files listed in the manifest being served.", "gauge", s.files.size);
  metric(lines, "update_mirror_manifest_bytes", "Total size of the files listed in the manifest being served.", "gauge", s.totalBytes);
  metric(lines, "update_mirror_retained_generations", "Previous generations whose files are served by hash.", "gauge", s.retained.length);
  metric(lines, "update_mirror_healthy", "1 while the committed manifest is readable and fresh enough, else 0.", "gauge", state.healthy ? 1 : 0);
  metric(lines, "update_mirror_server_processes", "Server processes whose counters are summed here.", "gauge", state.processes);
  metric(lines, "update_mirror_snapshot_reloads_total", "New manifests swapped in since start (summed over processes).", "counter", c.reloads);
  metric(lines, "update_mirror_snapshot_load_failures_total", "New manifests that could not be loaded (summed over processes).", "counter", c.loadFailures);
  metric(lines, "update_mirror_open_connections", "Client connections open now.", "gauge", c.openConnections);
  metric(lines, "update_mirror_cache_files", "Small files held in memory.", "gauge", c.cachedFiles);
  metric(lines, "update_mirror_cache_bytes", "Bytes of small files held in memory.", "gauge", c.cachedBytes);
  metric(lines, "update_mirror_hash_checks_total", "Files hashed before serving because their provenance was unknown.", "counter", c.hashChecks);
  const statuses = [...c.statuses].sort((a, b) => a[0] - b[0]);
  lines.push("# HELP update_mirror_http_requests_total HTTP responses by status code.", "# TYPE update_mirror_http_requests_total counter");
  for (const [code, requests] of statuses) lines.push(`update_mirror_http_requests_total{code="${code}"} ${requests}`);
  lines.push("# HELP update_mirror_http_response_bytes_total Response body bytes sent, by status code.", "# TYPE update_mirror_http_response_bytes_total counter");
  for (const [code, , bytes] of statuses) lines.push(`update_mirror_http_response_bytes_total{code="${code}"} ${bytes}`);
  return `${lines.join("\n")}\n`;
}
