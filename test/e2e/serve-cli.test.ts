// `serve` through the built CLI: mirrors chain over it, curl gets exact ranges and conditionals, SIGTERM drains, flags and non-mirrors are refused by name, auth files work.
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hasCommand, REPO_ROOT, runCli, scratchDir, writeTree } from "../support/cli.js";
import { http, type ServeChild, sha256, spawnServe, stopServe } from "./serve-harness.js";

const execFileAsync = promisify(execFile);
const hasCurl = hasCommand("curl");
if (!hasCurl) console.warn("skipping the curl tests of serve: curl is not installed (apt-get install curl)");

let dir: string;
let cleanup: () => Promise<void>;
let up: string;
let mirror: string;
let served: ServeChild | undefined;
const TREE: Record<string, Buffer> = {
  "product/bases/daily.cvd": randomBytes(300 * 1024),
  "product/bases/main.cvd": randomBytes(20 * 1024 * 1024),
  "product/readme.txt": Buffer.from("read me\n"),
  "odd/name with space #1.txt": Buffer.from("odd\n"),
  "empty.dat": Buffer.alloc(0),
};

beforeEach(async () => {
  ({ dir, cleanup } = await scratchDir("serve-cli"));
  up = join(dir, "up");
  mirror = join(dir, "mirror");
  await writeTree(up, TREE);
  const r = await runCli(["sync", "--source", up, "--dest", mirror]);
  expect(r.code, r.stderr).toBe(0);
});
afterEach(async () => {
  await stopServe(served);
  served = undefined;
  await cleanup();
});

describe("serve CLI", () => {
  it("serves a mirror made by sync, and a second mirror syncs from it over HTTP (mirrors chain)", async () => {
    served = await spawnServe([mirror]);
    expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(served.stdout[0]).toMatch(/^serving .* \(version 1, 5 files\) at http:/);
    const site = join(dir, "site");
    const r = await runCli(["sync", "--source", served.url, "--dest", site]);
    expect(r.code, r.stderr).toBe(0);
    expect((await runCli(["verify", site])).code).toBe(0);
    for (const [path, content] of Object.entries(TREE)) expect((await readFile(join(site, path))).equals(content), path).toBe(true);
    const again = await runCli(["sync", "--source", served.url, "--dest", site]);
    expect(again.stdout).toMatch(/up to date at version 1/);
    if (hasCommand("sha256sum")) execFileSync("sha256sum", ["--quiet", "-c", ".update-mirror/SHA256SUMS"], { cwd: site });
  });

  it.skipIf(!hasCurl)("gives curl exact ranges, 304s to conditional requests and resumable downloads", async () => {
    served = await spawnServe([mirror]);
    const url = `${served.url}product/bases/daily.cvd`;
    const content = TREE["product/bases/daily.cvd"] as Buffer;
    const part = join(dir, "part.bin");
    const { stdout: code } = await execFileAsync("curl", ["-sS", "-r", "0-511", "-o", part, "-w", "%{http_code}", url]);
    expect(code).toBe("206");
    expect((await readFile(part)).equals(content.subarray(0, 512))).toBe(true);

    // Conditional GET by date (curl -z with the file's own time) and by ETag (--etag-save / --etag-compare).
    const full = join(dir, "full.bin");
    const etagFile = join(dir, "etag.txt");
    await execFileAsync("curl", ["-sS", "-R", "-o", full, "--etag-save", etagFile, url]);
    expect((await readFile(full)).equals(content)).toBe(true);
    expect((await readFile(etagFile, "utf8")).trim()).toBe(`"sha256-${sha256(content)}"`);
    const byDate = await execFileAsync("curl", ["-sS", "-z", full, "-o", join(dir, "again.bin"), "-w", "%{http_code}", url]);
    expect(byDate.stdout).toBe("304");
    const byEtag = await execFileAsync("curl", ["-sS", "--etag-compare", etagFile, "-o", join(dir, "again2.bin"), "-w", "%{http_code}", url]);
    expect(byEtag.stdout).toBe("304");

    // An interrupted download continued with -C - ends byte-identical.
    const resumed = join(dir, "resumed.bin");
    await writeFile(resumed, content.subarray(0, 100_000));
    const cont = await execFileAsync("curl", ["-sS", "-C", "-", "-o", resumed, "-w", "%{http_code}", url]);
    expect(cont.stdout).toBe("206");
    expect(sha256(await readFile(resumed))).toBe(sha256(content));
    const head = await execFileAsync("curl", ["-sS", "-I", url]);
    expect(head.stdout).toMatch(/^content-length: 307200\r$/im);
    expect(head.stdout).toMatch(/^x-content-type-options: nosniff\r$/im);
  });

  it("on SIGTERM stops accepting, finishes the download in flight and exits 0", async () => {
    served = await spawnServe([mirror, "--log-file", join(dir, "serve.log")]);
    const content = TREE["product/bases/main.cvd"] as Buffer;
    const chunks: Buffer[] = [];
    let resumeReading: () => void = () => undefined;
    const download = new Promise<{ status: number; complete: boolean }>((resolve, reject) => {
      const req = httpRequest(`${served?.url}product/bases/main.cvd`, { agent: false }, (res) => {
        res.once("data", (first: Buffer) => {
          chunks.push(first);
          // A slow client: reading stops until the server has been told to stop.
          res.pause();
          resumeReading = () => {
            res.on("data", (d: Buffer) => chunks.push(d));
            res.resume();
          };
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, complete: res.complete }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
    while (chunks.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    served.child.kill("SIGTERM");
    const deadline = Date.now() + 10_000;
    while (!(await readFile(join(dir, "serve.log"), "utf8")).includes('"event":"serve:stopping"') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    // No new connections once stopping has begun.
    await expect(http(`${served.url}product/readme.txt`)).rejects.toThrow();
    resumeReading();
    const result = await download;
    expect(result).toEqual({ status: 200, complete: true });
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(content));
    expect(await served.exited).toBe(0);
    expect(served.stdout.at(-1)).toBe("stopped (SIGTERM)");
    const log = await readFile(join(dir, "serve.log"), "utf8");
    expect(log).toMatch(/"event":"serve:stopping","signal":"SIGTERM"/);
    expect(log).toMatch(/"event":"http:request","client":"127\.0\.0\.1","method":"GET","path":"\/product\/bases\/main\.cvd","status":200,"bytes":20971520,"ms":/);
  });

  it("cuts a client that will not finish once --shutdown-timeout has passed", async () => {
    served = await spawnServe([mirror, "--shutdown-timeout", "1s"]);
    let received = 0;
    const req = httpRequest(`${served.url}product/bases/main.cvd`, { agent: false }, (res) => {
      res.once("data", (first: Buffer) => {
        received += first.length;
        // A client that stops reading for good.
        res.pause();
      });
    });
    req.on("error", () => undefined);
    req.end();
    while (received === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const stopping = Date.now();
    served.child.kill("SIGTERM");
    expect(await served.exited).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(5000);
    req.destroy();
    expect(received).toBeLessThan((TREE["product/bases/main.cvd"] as Buffer).length);
  });

  it("refuses a folder that is not a mirror, naming it, and bad flags, naming the flag (exit 2)", async () => {
    const notMirror = await runCli(["serve", up, "--port", "0"]);
    expect(notMirror.code).toBe(2);
    expect(notMirror.stderr).toContain(`${up} is not a mirror: there is no committed manifest at ${join(up, ".update-mirror/manifest.json")}`);
    const missing = await runCli(["serve", join(dir, "nowhere"), "--port", "0"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(join(dir, "nowhere"));
    expect((await runCli(["serve", "--port", "0"])).stderr).toMatch(/give the mirror folder/);
    await writeFile(join(dir, "not-a-cert.pem"), "nothing here\n");
    for (const [args, message] of [
      [["--port", "70000"], /--port: must be a whole number from 0 to 65535/],
      [["--port", "0", "--allow", "10.0.0.0/33"], /--allow "10\.0\.0\.0\/33"/],
      [["--port", "0", "--allow", "mirror.example"], /--allow "mirror\.example"/],
      [["--port", "0", "--max-age", "soon"], /--max-age: "soon" is not a duration/],
      [["--port", "0", "--headers-timeout", "0s"], /--headers-timeout/],
      [["--port", "0", "--cache-size", "lots"], /--cache-size: "lots" is not a size/],
      [["--port", "0", "--max-connections", "0"], /--max-connections: must be a whole number/],
      [["--port", "0", "--tls-cert", join(dir, "not-a-cert.pem")], /--tls-cert and --tls-key go together/],
      [["--port", "0", "--tls-cert", join(dir, "not-a-cert.pem"), "--tls-key", join(dir, "not-a-cert.pem")], /--tls-cert .*not-a-cert\.pem .*not a usable PEM certificate/],
      [["--port", "0", "--tls-cert", join(dir, "none.pem"), "--tls-key", join(dir, "none.pem")], /--tls-cert .*none\.pem: not found/],
      [["--port", "0", "--auth-file", join(dir, "no-users")], /--auth-file .*no-users: not found/],
      [["--port", "0", "--auth-file", join(dir, "not-a-cert.pem")], /invalid auth file\n {2}line 1: expected user:scrypt/],
      [["--port", "0", "--host", "203.0.113.250"], /cannot listen on 203\.0\.113\.250:0: --host is not an address of this machine/],
    ] as [string[], RegExp][]) {
      const r = await runCli(["serve", mirror, ...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(message);
    }
    served = await spawnServe([mirror]);
    const port = new URL(served.url).port;
    const taken = await runCli(["serve", mirror, "--port", port]);
    expect(taken.code).toBe(2);
    expect(taken.stderr).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`));
  });

  it.skipIf(!hasCurl)("makes auth-file lines with --hash-password and requires them; the password is never logged", async () => {
    const password = "a long and secret passphrase";
    const made = await runCli(["serve", "--hash-password", "alice", "--password-env", "UM_TEST_PW"], { env: { ...process.env, UM_TEST_PW: password } });
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/^alice:scrypt\$32768\$8\$1\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*\n$/);
    expect(made.stdout).not.toContain(password);
    // Or from standard input, as in `printf %s "$PW" | update-mirror serve --hash-password bob`.
    const piped = await new Promise<string>((resolve, reject) => {
      const child = execFile(process.execPath, [join(REPO_ROOT, "bin/update-mirror.js"), "serve", "--hash-password", "bob"], (err, stdout) => (err ? reject(err) : resolve(stdout)));
      child.stdin?.end("bobs password\n");
    });
    expect(piped).toMatch(/^bob:scrypt\$/);
    const users = join(dir, "users");
    await writeFile(users, `# mirror users\n${made.stdout}${piped}`);
    const log = join(dir, "serve.log");
    served = await spawnServe([mirror, "--auth-file", users, "--log-file", log]);
    const url = `${served.url}product/readme.txt`;
    const denied = await execFileAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", url]);
    expect(denied.stdout).toBe("401");
    const wrong = await execFileAsync("curl", ["-sS", "-u", "alice:guess", "-o", "/dev/null", "-w", "%{http_code}", url]);
    expect(wrong.stdout).toBe("401");
    const ok = await execFileAsync("curl", ["-sS", "-u", `alice:${password}`, url]);
    expect(ok.stdout).toBe("read me\n");
    expect((await execFileAsync("curl", ["-sS", "-u", "bob:bobs password", url])).stdout).toBe("read me\n");
    expect((await execFileAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", `${served.url}.update-mirror/healthz`])).stdout).toBe("200");
    await stopServe(served);
    const text = await readFile(log, "utf8");
    expect(text).toMatch(/"user":"alice"/);
    expect(text).not.toContain(password);
    expect(text).not.toContain(Buffer.from(`alice:${password}`).toString("base64"));
    expect(text.toLowerCase()).not.toContain("authorization");
  });

  it("runs --workers processes on one port: all serve, metrics add up, a dead one is replaced, SIGTERM stops them all", async () => {
    const log = join(dir, "workers.log");
    served = await spawnServe([mirror, "--workers", "2", "--log-file", log]);
    expect(served.stdout[0]).toMatch(/\(version 1, 5 files, 2 processes\) at http:/);
    const url = `${served.url}product/readme.txt`;
    for (let i = 0; i < 40; i += 1) expect((await http(url)).status).toBe(200);
    const metrics = (await http(`${served.url}.update-mirror/metrics`)).body.toString();
    expect(metrics).toMatch(/^update_mirror_server_processes 2$/m);
    expect(Number(/^update_mirror_http_requests_total\{code="200"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(40);
    const pids = () =>
      readFile(log, "utf8").then((text) => new Set(text.split("\n").filter((l) => l.includes('"event":"http:request"')).map((l) => (JSON.parse(l) as { pid: number }).pid)));
    expect((await pids()).size).toBe(2);
    const victim = [...(await pids())][0] as number;
    process.kill(victim, "SIGKILL");
    const deadline = Date.now() + 10_000;
    while (!(await readFile(log, "utf8")).includes('"event":"serve:worker-exit"') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (let i = 0; i < 20; i += 1) expect((await http(url)).status).toBe(200);
    expect(await stopServe(served)).toBe(0);
    expect(served.stdout.at(-1)).toBe("stopped (SIGTERM)");
    const text = await readFile(log, "utf8");
    expect(text.split("\n").filter((l) => l.includes('"event":"serve:stopped"')).length).toBe(2);
  });

  const hasOpenssl = hasCommand("openssl") && hasCurl;
  if (!hasOpenssl) console.warn("skipping the serve --tls-cert CLI test: openssl or curl is not installed");
  it.skipIf(!hasOpenssl)("serves HTTPS with --tls-cert/--tls-key to curl", async () => {
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
    served = await spawnServe([mirror, "--tls-cert", cert, "--tls-key", key]);
    expect(served.url).toMatch(/^https:/);
    const out = join(dir, "tls-part.bin");
    const r = await execFileAsync("curl", ["-sS", "--cacert", cert, "-r", "0-511", "-o", out, "-w", "%{http_code}", `${served.url}product/bases/daily.cvd`]);
    expect(r.stdout).toBe("206");
    expect((await readFile(out)).equals((TREE["product/bases/daily.cvd"] as Buffer).subarray(0, 512))).toBe(true);
  });
});
