// Runs the real nginx with dist-templates/nginx-update-mirror.conf (root and port substituted) as a non-daemon child with its own prefix, pid and logs; used by the nginx test and bench/serve.ts.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { childStopper } from "./child.js";
import { REPO_ROOT } from "./cli.js";

export const NGINX_TEMPLATE = join(REPO_ROOT, "dist-templates", "nginx-update-mirror.conf");

/** The nginx binary: on PATH, or Debian's /usr/sbin/nginx (not on a non-root PATH). */
export function findNginx(): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/local/sbin"]) {
    if (dir !== "" && existsSync(join(dir, "nginx"))) return join(dir, "nginx");
  }
  return undefined;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** The shipped site config for `root` on 127.0.0.1:`port`; throws when the template no longer has the values it documents as CHANGE. */
export async function renderSite(root: string, port: number): Promise<string> {
  const template = await readFile(NGINX_TEMPLATE, "utf8");
  const replacements: [RegExp, string][] = [
    [/^(\s*)listen 8080;/m, `$1listen 127.0.0.1:${port};`],
    [/^\s*listen \[::\]:8080;.*$/m, ""],
    [/^(\s*)root \/srv\/mirror;/m, `$1root "${root}";`],
  ];
  let site = template;
  for (const [pattern, value] of replacements) {
    if (!pattern.test(site)) throw new Error(`${NGINX_TEMPLATE} has no line matching ${pattern}`);
    site = site.replace(pattern, value);
  }
  return site;
}

export interface NginxOptions {
  workerProcesses?: number | "auto";
  workerConnections?: number;
  /** An access log in the prefix (off by default, like a bench wants). */
  accessLog?: boolean;
}

export interface RunningNginx {
  url: string;
  port: number;
  prefix: string;
  errorLog: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Starts nginx in the foreground (`-g 'daemon off;'`) serving `root` with the shipped template, and waits until it accepts connections. */
export async function startNginx(binary: string, root: string, options: NginxOptions = {}): Promise<RunningNginx> {
  const prefix = await mkdtemp(join(tmpdir(), "um-nginx-"));
  await mkdir(join(prefix, "logs"));
  await mkdir(join(prefix, "temp"));
  const errorLog = join(prefix, "logs", "error.log");
  const port = await freePort();
  const mimeTypes = existsSync("/etc/nginx/mime.types") ? "include /etc/nginx/mime.types;" : "types { text/plain txt; text/html html; application/json json; }";
  // As root, nginx's workers would drop to "nobody", who cannot read a mode-0700 temp folder.
  const user = process.getuid?.() === 0 ? "user root root;" : "";
  const temp = (name: string) => `${name}_temp_path ${join(prefix, "temp", name)};`;
  const main = [
    user,
    `worker_processes ${options.workerProcesses ?? 1};`,
    `pid ${join(prefix, "nginx.pid")};`,
    `error_log ${errorLog} warn;`,
    `events { worker_connections ${options.workerConnections ?? 1024}; }`,
    "http {",
    `  ${mimeTypes}`,
    `  access_log ${options.accessLog ? join(prefix, "logs", "access.log") : "off"};`,
    `  ${["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(temp).join("\n  ")}`,
    `  include ${join(prefix, "site.conf")};`,
    "}",
    "",
  ].join("\n");
  await writeFile(join(prefix, "site.conf"), await renderSite(root, port));
  await writeFile(join(prefix, "nginx.conf"), main);
  const child = spawn(binary, ["-p", `${prefix}/`, "-c", join(prefix, "nginx.conf"), "-e", errorLog, "-g", "daemon off;"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString("utf8");
  });
  const stopChild = childStopper(child, "SIGQUIT", 5_000);
  const stop = async () => {
    await stopChild();
    await rm(prefix, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      const log = await readFile(errorLog, "utf8").catch(() => "");
      await stop();
      throw new Error(`nginx did not start on port ${port}:\n${stderr}${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url: `http://127.0.0.1:${port}/`, port, prefix, errorLog, child, stop };
}
