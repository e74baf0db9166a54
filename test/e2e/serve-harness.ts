// Helpers for the `serve` tests: an in-process server on port 0 with its access log captured, raw-socket requests, and the built CLI as a child process.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { join } from "node:path";
import type { ServeLog } from "../../src/serve/live-snapshot.js";
import { type AccessRecord, type RunningServer, SERVE_DEFAULTS, type ServeOptions, startServer } from "../../src/serve/server.js";
import { REPO_ROOT } from "../support/cli.js";

export function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** What the server logged, by level. */
export interface CapturedLog extends ServeLog {
  lines: { level: string; obj: object; msg?: string | undefined }[];
}

export function captureLog(): CapturedLog {
  const lines: CapturedLog["lines"] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: "info", obj, msg }),
    warn: (obj, msg) => lines.push({ level: "warn", obj, msg }),
    error: (obj, msg) => lines.push({ level: "error", obj, msg }),
  };
}

export interface InProcessServer {
  server: RunningServer;
  url: string;
  port: number;
  access: AccessRecord[];
  log: CapturedLog;
  close(): Promise<void>;
}

/** Starts `serve` in this process on 127.0.0.1 at a free port; the defaults are the CLI's. */
export async function serveInProcess(root: string, options: Partial<ServeOptions> = {}): Promise<InProcessServer> {
  const access: AccessRecord[] = [];
  const log = captureLog();
  const server = await startServer({ ...SERVE_DEFAULTS, root, port: 0, listing: true, pollMs: 200, log, access: (r) => access.push(r), ...options });
  return { server, url: server.url, port: server.address.port, access, log, close: () => server.close() };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Everything the server sent on the connection. */
  raw: Buffer;
}

/** Sends `request` bytes as they are (no normalisation) and reads until the server closes; resolves with status 0 when no status line came. */
export function rawRequest(port: number, request: string | Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of response within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const split = raw.indexOf("\r\n\r\n");
      const head = (split < 0 ? raw : raw.subarray(0, split)).toString("latin1").split("\r\n");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "")?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(":");
        if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status, headers, body: split < 0 ? Buffer.alloc(0) : raw.subarray(split + 4), raw });
    });
  });
}

/** A GET for `target` (sent raw, exactly as given) that closes the connection afterwards. */
export function rawGet(port: number, target: string, extraHeaders = ""): Promise<RawResponse> {
  return rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extraHeaders}\r\n`);
}

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request through node:http (keep-alive off), for exact control of headers and HEAD. */
export function http(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? "GET", headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

export interface ServeChild {
  child: ChildProcessWithoutNullStreams;
  url: string;
  stdout: string[];
  stderr: () => string;
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number>;
}

/** Runs the built CLI's `serve` with `args` (port 0 unless given) and waits for the line naming its URL. */
export async function spawnServe(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<ServeChild> {
  const withPort = args.includes("--port") ? args : [...args, "--port", "0"];
  const child = spawn(process.execPath, [join(REPO_ROOT, "bin/update-mirror.js"), "serve", ...withPort], { env: options.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
  const stdout: string[] = [];
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString("utf8");
  });
  const exited = new Promise<number>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  const lines = createInterface({ input: child.stdout });
  lines.on("line", (line) => stdout.push(line));
  const url = await new Promise<string>((resolve, reject) => {
    const onLine = (line: string) => {
      const match = / at (https?:\/\/\S+\/)$/.exec(line);
      if (match) {
        lines.off("line", onLine);
        resolve(match[1] as string);
      }
    };
    lines.on("line", onLine);
    exited.then((code) => reject(new Error(`serve exited with ${code} before listening:\n${stderr}`)));
  });
  return { child, url, stdout, stderr: () => stderr, exited };
}

/** Sends SIGTERM and waits for the exit code. */
export function stopServe(served: ServeChild | undefined): Promise<number | undefined> {
  if (served === undefined) return Promise.resolve(undefined);
  if (served.child.exitCode === null && served.child.signalCode === null) served.child.kill("SIGTERM");
  return served.exited;
}
