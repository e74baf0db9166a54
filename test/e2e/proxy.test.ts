// Sync through a real tinyproxy with Basic auth: explicit flags, the environment's proxy, and credentials that never leak.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, scratchDir } from "../support/cli.js";
import { makeUpstream, startVendorServer, type VendorServer } from "../servers/vendor-server.js";

const proxyUrl = process.env.UM_TEST_PROXY_URL;
const proxyUser = process.env.UM_TEST_PROXY_USER;
const proxyPass = process.env.UM_TEST_PROXY_PASS;
const haveProxy = proxyUrl !== undefined && proxyUser !== undefined && proxyPass !== undefined;
if (!haveProxy) console.warn("skipping proxy tests: no tinyproxy (run `bash .ci/services.sh up` and eval `bash .ci/services.sh env`; .ci/run does)");

describe.skipIf(!haveProxy)("sync through tinyproxy", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let server: VendorServer;
  const baseEnv = () => {
    const env = { ...process.env };
    for (const k of ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"]) delete env[k];
    return env;
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await scratchDir("proxy"));
    await makeUpstream(join(dir, "up"), { "a.bin": Buffer.alloc(200_000, 7), "b/c.txt": "c\n" });
    server = await startVendorServer(join(dir, "up"));
  });
  afterAll(async () => {
    await server.close();
    await cleanup();
  });

  const proxied = () => server.requests.filter((r) => String(r.headers.via ?? "").includes("tinyproxy"));

  it("goes through the proxy given by flags, with the password from an environment variable", async () => {
    server.requests.length = 0;
    const r = await runCli(["sync", "--source", server.url, "--dest", join(dir, "m1"), "--proxy", proxyUrl as string, "--proxy-user", proxyUser as string, "--proxy-password-env", "UM_PROXY_PASS"], {
      env: { ...baseEnv(), UM_PROXY_PASS: proxyPass },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests.length).toBeGreaterThan(0);
    expect(proxied()).toHaveLength(server.requests.length);
  });

  it("honours HTTP_PROXY with credentials, and NO_PROXY", async () => {
    const withCreds = new URL(proxyUrl as string);
    withCreds.username = proxyUser as string;
    withCreds.password = proxyPass as string;
    server.requests.length = 0;
    const r = await runCli(["sync", "--source", server.url, "--dest", join(dir, "m2")], { env: { ...baseEnv(), HTTP_PROXY: withCreds.href } });
    expect(r.code, r.stderr).toBe(0);
    expect(proxied().length).toBeGreaterThan(0);

    server.requests.length = 0;
    const direct = await runCli(["sync", "--source", server.url, "--dest", join(dir, "m3")], { env: { ...baseEnv(), HTTP_PROXY: withCreds.href, NO_PROXY: "127.0.0.1" } });
    expect(direct.code, direct.stderr).toBe(0);
    expect(proxied()).toHaveLength(0);
  });

  it("fails with exit 7 on a wrong password and never shows the password anywhere", async () => {
    const secret = "wrong-but-secret-pw-123";
    const log = join(dir, "log.jsonl");
    const r = await runCli(
      ["sync", "--source", server.url, "--dest", join(dir, "m4"), "--proxy", proxyUrl as string, "--proxy-user", proxyUser as string, "--proxy-password-env", "UM_PROXY_PASS", "--retries", "0", "--json", "--log-level", "debug", "--log-file", log],
      { env: { ...baseEnv(), UM_PROXY_PASS: secret } },
    );
    expect(r.code).toBe(7);
    const everything = r.stdout + r.stderr + (await readFile(log, "utf8"));
    expect(everything).toMatch(/40[17]/);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(Buffer.from(`${proxyUser}:${secret}`).toString("base64"));
  });

  it("reaches an HTTPS upstream through the proxy, trusting a private CA given by --ca-file, and fails without it", async () => {
    const ca = process.env.UM_TEST_CA;
    const cert = process.env.UM_TEST_CERT;
    const key = process.env.UM_TEST_KEY;
    if (ca === undefined || cert === undefined || key === undefined) throw new Error("UM_TEST_CA/UM_TEST_CERT/UM_TEST_KEY must come with the proxy settings (.ci/services.sh env)");
    const tls = await startVendorServer(join(dir, "up"), { tls: { cert: await readFile(cert, "utf8"), key: await readFile(key, "utf8") } });
    try {
      const args = ["sync", "--source", tls.url, "--proxy", proxyUrl as string, "--proxy-user", proxyUser as string, "--proxy-password-env", "UM_PROXY_PASS", "--retries", "0"];
      const env = { ...baseEnv(), UM_PROXY_PASS: proxyPass, NODE_EXTRA_CA_CERTS: "" };
      const untrusted = await runCli([...args, "--dest", join(dir, "m6")], { env });
      expect(untrusted.code).toBe(7);
      expect(untrusted.stderr).toMatch(/certificate|UNABLE_TO_VERIFY|self.signed/i);
      const ok = await runCli([...args, "--dest", join(dir, "m7"), "--ca-file", ca], { env });
      expect(ok.code, ok.stderr).toBe(0);
      expect(tls.requests.length).toBeGreaterThan(0);
    } finally {
      await tls.close();
    }
  });

  it("refuses a password inside --proxy", async () => {
    const r = await runCli(["sync", "--source", server.url, "--dest", join(dir, "m5"), "--proxy", "http://u:hunter2@127.0.0.1:1/"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no password in the URL/);
    expect(r.stderr).not.toContain("hunter2");
  });
});
