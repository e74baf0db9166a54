// Passwords, passphrases and proxy credentials never reach output, a log line (trace, rotated files too), `status` or the mirror's private state, whatever fails.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rotatedLogFiles } from "../../src/cli/log-file.js";
import { writeKeyPair } from "../../src/crypto/keys.js";
import { hasCommand, REPO_ROOT, runCli, scratchDir } from "../support/cli.js";
import { freePort } from "../support/nginx.js";
import { FTP_SKIP_REASON, ftpService, ftpUrl } from "../servers/ftp-service.js";
import { SMB_SKIP_REASON, smbFolder, smbService, smbUrl } from "../servers/smb-service.js";
import { makeKeyPair, makeUpstream, startVendorServer, type VendorServer } from "../servers/vendor-server.js";

const proxyUrl = process.env.UM_TEST_PROXY_URL;
const proxyUser = process.env.UM_TEST_PROXY_USER;
const proxyPass = process.env.UM_TEST_PROXY_PASS;
const haveProxy = proxyUrl !== undefined && proxyUser !== undefined && proxyPass !== undefined;
const PROXY_SKIP_REASON = "no tinyproxy (run `bash .ci/services.sh up` and eval `bash .ci/services.sh env`; .ci/run does)";
const ftp = ftpService();
const smb = smbService();
if (!haveProxy) console.warn(`skipping the secret-leak cases through a real proxy: ${PROXY_SKIP_REASON}`);
if (ftp === undefined) console.warn(`skipping the secret-leak cases against FTP: ${FTP_SKIP_REASON}`);
if (smb === undefined) console.warn(`skipping the secret-leak cases against SMB: ${SMB_SKIP_REASON}`);

// Distinctive, and with characters that URL-encoding changes, so an encoded copy is looked for too.
const SECRET = {
  proxy: "Px-l3ak-canary!proxy#1",
  envProxy: "Px-l3ak-canary!envproxy#2",
  ftp: "Ftp-l3ak-canary!ftp#3",
  smb: "Smb-l3ak-canary!smb#4",
  inUrl: "Url-l3ak-canary!inurl#5",
  passphrase: "Key-l3ak-canary!right#6",
  wrongPassphrase: "Key-l3ak-canary!wrong#7",
};

/** Every form a secret could leak in: as is, URL-encoded, base64 (alone and as Basic user:secret). */
function forms(secret: string, users: string[] = []): string[] {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return [secret, encodeURIComponent(secret), b64(secret), ...users.map((u) => b64(`${u}:${secret}`))];
}

interface Case {
  /** A folder name, also the test's title. */
  name: string;
  args: string[];
  env?: Record<string, string>;
  /** Secrets in play (our canaries and the services' real passwords), each with the users it may be paired with. */
  secrets: [string, string[]][];
  code: number;
  /** What the failure must say (stderr), so the case fails for the intended reason. */
  message: RegExp;
  /** The command takes --json. */
  json: boolean;
  /** A local mirror or endpoint folder to run `status` on and read the private state of. */
  dest?: string;
  /** The failed run must have recorded itself in the state (so that file is really checked). */
  recordsState?: boolean;
  /** A run that succeeds first, logging at trace into the same log file until it has rotated. */
  warmup?: string[];
  /** The proxy refused us: the upstream behind it saw no request. */
  proxyRefused?: boolean;
}

describe("no secret reaches output, logs, status or state", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let upstream: string;
  let server401: VendorServer;
  let server500: VendorServer;
  let good: VendorServer;
  let closedPort: number;
  let signKey: string;
  let trustKey: string;
  const smbFolders: { remove: () => Promise<void> }[] = [];

  beforeAll(async () => {
    ({ dir, cleanup } = await scratchDir("secret-leak"));
    upstream = join(dir, "up");
    const key = await makeKeyPair(join(dir, "vendor"));
    await makeUpstream(upstream, { "a.bin": Buffer.alloc(5000, 1), "b/c.txt": "c\n" }, { signingKey: key.secretKey });
    trustKey = join(dir, "vendor.pub");
    server401 = await startVendorServer(upstream);
    server401.setFault("*", { kind: "status", code: 401 });
    server500 = await startVendorServer(upstream);
    server500.setFault("*", { kind: "status", code: 500 });
    good = await startVendorServer(upstream);
    closedPort = await freePort();
    signKey = (await writeKeyPair(join(dir, "mirror"), { passphrase: SECRET.passphrase })).secretPath;
  });
  afterAll(async () => {
    await Promise.all([server401?.close(), server500?.close(), good?.close()]);
    for (const f of smbFolders) await f.remove();
    await cleanup?.();
  });

  /** An environment without the caller's proxy settings, plus `extra`. */
  const envWith = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
    const env = { ...process.env, ...extra };
    for (const k of ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"]) if (!(k in extra)) delete env[k];
    return env;
  };

  /** The files under a mirror's (or endpoint's) private folder that are text: state, journal, lock. */
  async function privateText(root: string): Promise<string> {
    const candidates = [join(root, ".update-mirror", "private"), join(root, "..", `.${root.split("/").pop()}.update-mirror`, "private")];
    let text = "";
    for (const privateDir of candidates) {
      if (!existsSync(privateDir)) continue;
      for (const name of await readdir(privateDir)) {
        if (/\.json$|^lock$/.test(name)) text += await readFile(join(privateDir, name), "utf8");
      }
    }
    return text;
  }

  /**
   * Runs a case twice (trace to a rotated log file with --json; debug on stderr), checks that it failed
   * as intended, then runs `status`, and returns every place where a form of a secret shows, as
   * "PLACE: FORM" (empty when nothing leaked).
   */
  async function leaksOf(c: Case): Promise<string[]> {
    const base = join(dir, c.name);
    const log = join(base, "logs", "um.log");
    const env = envWith(c.env);
    const logFlags = ["--log-level", "trace", "--log-file", log, "--log-max-size", "1k", "--log-keep", "1000"];
    const places: [string, string][] = [];
    if (c.warmup !== undefined) {
      const ok = await runCli([...c.warmup, ...logFlags], { env });
      expect(ok.code, ok.stderr).toBe(0);
      expect(rotatedLogFiles(log).length, "the warm-up run did not rotate the log").toBeGreaterThan(0);
      places.push(["warm-up stdout", ok.stdout], ["warm-up stderr", ok.stderr]);
    }
    good.requests.length = 0;
    const runs = [await runCli([...c.args, ...(c.json ? ["--json"] : []), ...logFlags], { env }), await runCli([...c.args, "--log-level", "debug"], { env })];
    if (c.proxyRefused) expect(good.requests, "the proxy let a request through").toEqual([]);
    runs.forEach((r, i) => {
      expect(r.code, `${r.stdout}${r.stderr}`).toBe(c.code);
      expect(r.stderr).toMatch(c.message);
      places.push([`run ${i + 1} stdout`, r.stdout], [`run ${i + 1} stderr`, r.stderr]);
    });
    const logFiles = [...rotatedLogFiles(log), log].filter((f) => existsSync(f));
    const logs = (await Promise.all(logFiles.map((f) => readFile(f, "utf8")))).join("");
    // A run that got as far as the engine logged its events at trace level, so the log file is really checked.
    if (c.recordsState) expect(logs.length, "the log file is empty").toBeGreaterThan(0);
    for (const l of logs.split("\n").filter((x) => x !== "")) expect(() => JSON.parse(l), l).not.toThrow();
    places.push(["log files", logs]);
    if (c.dest !== undefined) {
      const status = await runCli(["status", "--dest", c.dest, "--json"], { env });
      const statusText = await runCli(["status", "--dest", c.dest], { env });
      const state = await privateText(c.dest);
      if (c.recordsState) {
        expect(state, "no state was recorded").toMatch(/"lastRun"/);
        expect(status.stdout).toMatch(/"lastRun":\{/);
      }
      places.push(["status --json", status.stdout + status.stderr], ["status", statusText.stdout + statusText.stderr], ["private state", state]);
    }
    const leaks: string[] = [];
    for (const [secret, users] of c.secrets) {
      for (const form of forms(secret, users)) {
        for (const [where, text] of places) {
          const at = text.indexOf(form);
          if (at >= 0) leaks.push(`${where}: ${form} in ...${text.slice(Math.max(0, at - 80), at + form.length + 40)}...`);
        }
      }
    }
    return leaks;
  }

  const check = async (c: Case) => expect(await leaksOf(c)).toEqual([]);

  const sync = (name: string, source: string, ...extra: string[]) => ["sync", "--source", source, "--dest", join(dir, name, "mirror"), "--retries", "0", ...extra];
  /** The services' real passwords, which no failure may show either. */
  const real = (): [string, string[]][] => [
    ...(proxyPass !== undefined ? [[proxyPass, [proxyUser ?? ""]] as [string, string[]]] : []),
    ...(ftp ? [[ftp.password, [ftp.user]] as [string, string[]]] : []),
    ...(smb ? [[smb.password, [smb.user]] as [string, string[]]] : []),
  ];

  it("finds a secret wherever it shows: output, the log file, status --json and the private state", async () => {
    // Not a secret at all: a folder name that every place repeats, so the search must find it in each.
    const shown = "Shown-canary-folder";
    const leaks = await leaksOf({ name: "self-test", args: sync("self-test", join(dir, shown)), secrets: [[shown, []]], code: 7, message: /not found/, json: true, dest: join(dir, "self-test", "mirror"), recordsState: true });
    const places = new Set(leaks.map((l) => l.split(":")[0]));
    expect([...places].sort()).toEqual(["log files", "private state", "run 1 stderr", "run 1 stdout", "run 2 stderr", "run 2 stdout", "status --json"]);
  });

  it.skipIf(!hasCommand("script"))("on a terminal, logs are short human lines, and show no secret either", async () => {
    // util-linux `script` gives the CLI a terminal for stdin, stdout and stderr.
    const args = [...sync("tty", good.url, "--proxy", `http://127.0.0.1:${closedPort}/`, "--proxy-user", "leakuser", "--proxy-password-env", "UM_LEAK_PROXY"), "--log-level", "debug"];
    const command = [process.execPath, join(REPO_ROOT, "bin", "update-mirror.js"), ...args].map((a) => `'${a}'`).join(" ");
    const output = await new Promise<string>((resolve) => {
      execFile("script", ["-qec", command, "/dev/null"], { env: envWith({ UM_LEAK_PROXY: SECRET.proxy }), cwd: dir }, (_err, stdout) => resolve(stdout));
    });
    expect(output).toMatch(/^\d\d:\d\d:\d\d \S*INFO \S* ?run:start dest=/m);
    expect(output).toMatch(/update-mirror: no usable source/);
    expect(output).not.toMatch(/^\{"level"/m);
    for (const form of forms(SECRET.proxy, ["leakuser"])) expect(output).not.toContain(form);
  });

  describe("a failing proxy", () => {
    it.skipIf(!haveProxy)("wrong proxy password from --proxy-password-env (tinyproxy refuses with 401 or 407), for sync and pull", async () => {
      const proxyArgs = ["--proxy", proxyUrl as string, "--proxy-user", proxyUser as string, "--proxy-password-env", "UM_LEAK_PROXY"];
      const secrets: [string, string[]][] = [[SECRET.proxy, [proxyUser as string]], ...real()];
      await check({ name: "proxy-407", args: sync("proxy-407", good.url, ...proxyArgs), env: { UM_LEAK_PROXY: SECRET.proxy }, secrets, code: 7, message: /HTTP 40[17]/, json: true, dest: join(dir, "proxy-407", "mirror"), recordsState: true, proxyRefused: true });
      const to = join(dir, "proxy-407-pull", "endpoint");
      await check({ name: "proxy-407-pull", args: ["pull", "--source", good.url, "--to", to, "--trust", trustKey, "--retries", "0", ...proxyArgs], env: { UM_LEAK_PROXY: SECRET.proxy }, secrets, code: 7, message: /HTTP 40[17]/, json: true, dest: to, proxyRefused: true });
    });

    it("a proxy that is unreachable, with a user and password", async () => {
      await check({
        name: "proxy-down",
        args: sync("proxy-down", good.url, "--proxy", `http://127.0.0.1:${closedPort}/`, "--proxy-user", "leakuser", "--proxy-password-env", "UM_LEAK_PROXY"),
        env: { UM_LEAK_PROXY: SECRET.proxy },
        secrets: [[SECRET.proxy, ["leakuser"]], ...real()],
        code: 7,
        message: /ECONNREFUSED|refused|unreachable/i,
        json: true,
        dest: join(dir, "proxy-down", "mirror"),
        recordsState: true,
      });
    });

    it("HTTP_PROXY with credentials in it, unreachable", async () => {
      await check({
        name: "env-proxy-down",
        args: sync("env-proxy-down", good.url),
        env: { HTTP_PROXY: `http://leakuser:${encodeURIComponent(SECRET.envProxy)}@127.0.0.1:${closedPort}/` },
        secrets: [[SECRET.envProxy, ["leakuser"]], ...real()],
        code: 7,
        message: /ECONNREFUSED|refused|unreachable/i,
        json: true,
        dest: join(dir, "env-proxy-down", "mirror"),
        recordsState: true,
      });
    });

    it.skipIf(!haveProxy)("HTTP_PROXY with a wrong password in it (tinyproxy refuses with 401 or 407)", async () => {
      const withCreds = new URL(proxyUrl as string);
      withCreds.username = proxyUser as string;
      withCreds.password = encodeURIComponent(SECRET.envProxy);
      await check({
        name: "env-proxy-407",
        args: sync("env-proxy-407", good.url),
        env: { HTTP_PROXY: withCreds.href },
        secrets: [[SECRET.envProxy, [proxyUser as string]], ...real()],
        code: 7,
        message: /HTTP 40[17]/,
        json: true,
        dest: join(dir, "env-proxy-407", "mirror"),
        recordsState: true,
        proxyRefused: true,
      });
    });

    it("a password inside --proxy is refused without echoing it", async () => {
      await check({
        name: "proxy-inline",
        args: sync("proxy-inline", good.url, "--proxy", `http://leakuser:${encodeURIComponent(SECRET.inUrl)}@127.0.0.1:${closedPort}/`),
        secrets: [[SECRET.inUrl, ["leakuser"]], ...real()],
        code: 2,
        message: /--proxy: put no password in the URL/,
        json: true,
      });
    });
  });

  describe("a failing source", () => {
    // Through the real proxy (with its right password) when there is one, and with a sign key whose
    // passphrase is right: the run gets as far as the source, carrying both secrets.
    const carried = (): string[] => [
      "--sign-key",
      signKey,
      "--passphrase-env",
      "UM_LEAK_PASSPHRASE",
      ...(haveProxy ? ["--proxy", proxyUrl as string, "--proxy-user", proxyUser as string, "--proxy-password-env", "UM_LEAK_PROXY"] : []),
    ];
    const carriedEnv = () => ({ UM_LEAK_PASSPHRASE: SECRET.passphrase, ...(haveProxy && { UM_LEAK_PROXY: proxyPass as string }) });

    it.each([
      [401, /\b401\b/],
      [500, /\b500\b/],
    ])("HTTP %i from the server", async (status, message) => {
      const name = `http-${status}`;
      await check({
        name,
        args: sync(name, (status === 401 ? server401 : server500).url, "--trust", trustKey, ...carried()),
        // The same mirror synced from a good server first, with the same secrets, so the log has rotated.
        warmup: [...sync(name, good.url, "--trust", trustKey, ...carried()), "--json"],
        env: carriedEnv(),
        secrets: [[SECRET.passphrase, []], ...real()],
        code: 7,
        message,
        json: true,
        dest: join(dir, name, "mirror"),
        recordsState: true,
      });
    });

    it.skipIf(ftp === undefined)("FTP with a wrong password", async () => {
      const f = ftp as NonNullable<typeof ftp>;
      const secretFile = join(dir, "ftp-pass");
      await writeFile(secretFile, `${SECRET.ftp}\n`);
      await check({
        name: "ftp-530",
        args: sync("ftp-530", ftpUrl(f, "secret-leak"), "--ftp-password-file", secretFile),
        secrets: [[SECRET.ftp, [f.user]], ...real()],
        code: 7,
        message: /login refused \(530/,
        json: true,
        dest: join(dir, "ftp-530", "mirror"),
        recordsState: true,
      });
    });

    it.each([
      ["http", (s: string) => `http://leakuser:${s}@127.0.0.1:${"1"}/up/`],
      ["ftp", (s: string) => `ftp://leakuser:${s}@127.0.0.1:1/up/`],
      ["smb", (s: string) => `smb://leakuser:${s}@127.0.0.1:1/share/up`],
    ])("a %s source URL with a password in it is refused without echoing it", async (kind, url) => {
      const name = `source-url-${kind}`;
      await check({
        name,
        args: sync(name, url(encodeURIComponent(SECRET.inUrl))),
        secrets: [[SECRET.inUrl, ["leakuser"]], ...real()],
        code: 2,
        message: /put no password in a source URL/,
        json: true,
      });
    });

    it("a pull source URL with a password in it is refused without echoing it", async () => {
      const to = join(dir, "pull-url", "endpoint");
      await check({
        name: "pull-url",
        args: ["pull", "--source", `http://leakuser:${encodeURIComponent(SECRET.inUrl)}@127.0.0.1:1/up/`, "--to", to, "--trust", trustKey],
        secrets: [[SECRET.inUrl, ["leakuser"]], ...real()],
        code: 2,
        message: /password/,
        json: true,
      });
    });

    it.each([
      ["smb", (s: string) => `smb://leakuser:${s}@127.0.0.1:1/share/mirror`],
      ["ftp", (s: string) => `ftp://leakuser:${s}@127.0.0.1:1/mirror/`],
    ])("an %s destination URL with a password in it is refused without echoing it", async (kind, url) => {
      const name = `dest-url-${kind}`;
      await check({
        name,
        args: ["sync", "--source", good.url, "--dest", url(encodeURIComponent(SECRET.inUrl)), "--retries", "0"],
        secrets: [[SECRET.inUrl, ["leakuser"]], ...real()],
        code: 2,
        message: /password|destination/,
        json: true,
      });
    });
  });

  describe.skipIf(smb === undefined)("a failing share", () => {
    const s = smb as NonNullable<typeof smb>;
    const smbArgs = ["--smb-password-env", "UM_LEAK_SMB"];
    const smbEnv = { UM_LEAK_SMB: SECRET.smb };
    const secrets = (): [string, string[]][] => [[SECRET.smb, [s.user]], ...real()];

    it("a wrong SMB password, as --source and as --dest", async () => {
      const folder = await smbFolder(s, "secret-leak");
      smbFolders.push(folder);
      const url = smbUrl(s, folder.name);
      await check({ name: "smb-source-login", args: sync("smb-source-login", url, ...smbArgs), env: smbEnv, secrets: secrets(), code: 7, message: /login refused for user .*STATUS_LOGON_FAILURE/, json: true, dest: join(dir, "smb-source-login", "mirror"), recordsState: true });
      await check({
        name: "smb-dest-login",
        args: ["sync", "--source", good.url, "--dest", url, "--retries", "0", ...smbArgs],
        env: smbEnv,
        secrets: secrets(),
        code: 8,
        message: /login refused for user .*STATUS_LOGON_FAILURE/,
        json: true,
        dest: folder.dir,
      });
    });

    it("an SMB server that is not there, as --source and as --dest", async () => {
      const url = smbUrl(s, "secret-leak-down", String(closedPort));
      await check({ name: "smb-source-down", args: sync("smb-source-down", url, ...smbArgs), env: smbEnv, secrets: secrets(), code: 7, message: /ECONNREFUSED|refused|unreachable/i, json: true, dest: join(dir, "smb-source-down", "mirror"), recordsState: true });
      await check({ name: "smb-dest-down", args: ["sync", "--source", good.url, "--dest", url, "--retries", "0", ...smbArgs], env: smbEnv, secrets: secrets(), code: 8, message: /ECONNREFUSED|refused|unreachable/i, json: true });
    });
  });

  describe("a wrong sign-key passphrase", () => {
    it("for sync and for index", async () => {
      const env = { UM_LEAK_PASSPHRASE: SECRET.wrongPassphrase };
      const secrets: [string, string[]][] = [[SECRET.wrongPassphrase, []], [SECRET.passphrase, []], ...real()];
      await check({ name: "passphrase-sync", args: sync("passphrase-sync", good.url, "--sign-key", signKey, "--passphrase-env", "UM_LEAK_PASSPHRASE"), env, secrets, code: 2, message: /passphrase/, json: true });
      await makeUpstream(join(dir, "passphrase-index"), { "x.txt": "x\n" });
      await check({ name: "passphrase-index-run", args: ["index", join(dir, "passphrase-index"), "--key", signKey, "--passphrase-env", "UM_LEAK_PASSPHRASE"], env, secrets, code: 2, message: /passphrase/, json: true, dest: join(dir, "passphrase-index") });
    });
  });
});
