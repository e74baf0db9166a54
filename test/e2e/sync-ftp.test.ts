// `sync --source ftp://...` through the built CLI against the real vsftpd of .ci/services.sh: listing, no-op re-runs, changes, FTPS, credentials that never leak, resume after a cut.
import { randomBytes } from "node:crypto";
import { readFile, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonEvents, runCli, scratchDir, writeTree } from "../support/cli.js";
import { FTP_SKIP_REASON, ftpFolder, ftpService, ftpUrl, startFtpCuttingProxy } from "../servers/ftp-service.js";

const service = ftpService();
if (service === undefined) console.warn(`skipping FTP sync tests: ${FTP_SKIP_REASON}`);

interface Event {
  type: string;
  path?: string;
  offset?: number;
  summary?: { result: string; added: number; updated: number; removed: number };
}
const events = (stdout: string) => jsonEvents<Event>(stdout);
const started = (stdout: string) =>
  events(stdout)
    .filter((e) => e.type === "file:start")
    .map((e) => e.path)
    .sort();

describe.skipIf(service === undefined)("sync from FTP (vsftpd)", () => {
  const ftp = service as NonNullable<typeof service>;
  const BIG = randomBytes(700_000);
  const tree = { "a/big.bin": BIG, "b/two.txt": "two\n", "three.txt": "three\n", "with space/#4.txt": "four\n" };
  let dir: string;
  let cleanup: () => Promise<void>;
  let folder: Awaited<ReturnType<typeof ftpFolder>>;
  let url: string;
  const env = () => ({ ...process.env, UM_TEST_FTP_PASS: ftp.password });
  const countLogged = async () => (await readFile(ftp.log, "utf8")).split("\n").filter((l) => l.includes("OK DOWNLOAD") && l.includes(`/${folder.name}/`)).length;
  /** RETRs vsftpd logged for this tree; it may log a transfer a moment after the client saw it end, so this waits (briefly) for `atLeast`. */
  const downloadsLogged = async (atLeast: number) => {
    for (const deadline = Date.now() + 3000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      if ((await countLogged()) >= atLeast) break;
    }
    return countLogged();
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await scratchDir("sync-ftp"));
    folder = await ftpFolder(ftp, "sync-ftp");
    await writeTree(folder.dir, tree);
    // A server-side link is not payload: the listing leaves it out.
    await symlink("three.txt", join(folder.dir, "link-to-three.txt"));
    url = ftpUrl(ftp, folder.name);
  });
  afterAll(async () => {
    await folder?.remove();
    await cleanup?.();
  });

  it("copies a tree without a manifest, then a re-run downloads nothing, then a changed file is fetched alone", async () => {
    const mirror = join(dir, "m1");
    const first = await runCli(["sync", "--source", url, "--dest", mirror, "--ftp-password-env", "UM_TEST_FTP_PASS", "--json"], { env: env() });
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(started(first.stdout)).toEqual(Object.keys(tree).sort());
    for (const [path, content] of Object.entries(tree)) expect((await readFile(join(mirror, path))).equals(Buffer.from(content)), path).toBe(true);
    await expect(readFile(join(mirror, "link-to-three.txt"))).rejects.toThrow();
    expect((await runCli(["verify", mirror])).code).toBe(0);
    const logged = await downloadsLogged(Object.keys(tree).length);
    expect(logged).toBe(Object.keys(tree).length);

    const again = await runCli(["sync", "--source", url, "--dest", mirror, "--ftp-password-env", "UM_TEST_FTP_PASS", "--json"], { env: env() });
    expect(again.code).toBe(0);
    expect(started(again.stdout)).toEqual([]);
    expect(events(again.stdout).find((e) => e.type === "run:done")?.summary?.result).toBe("unchanged");
    expect(await downloadsLogged(logged)).toBe(logged);

    // Same size, other bytes: only MDTM tells them apart (pushed a minute ahead, beyond any rounding).
    await writeFile(join(folder.dir, "b/two.txt"), "TWO\n");
    const later = new Date(Date.now() + 60_000);
    await utimes(join(folder.dir, "b/two.txt"), later, later);
    const changed = await runCli(["sync", "--source", url, "--dest", mirror, "--ftp-password-env", "UM_TEST_FTP_PASS", "--json"], { env: env() });
    expect(changed.code).toBe(0);
    expect(started(changed.stdout)).toEqual(["b/two.txt"]);
    expect(events(changed.stdout).find((e) => e.type === "run:done")?.summary).toMatchObject({ result: "updated", updated: 1, added: 0, removed: 0 });
    expect(await readFile(join(mirror, "b/two.txt"), "utf8")).toBe("TWO\n");
    expect(await downloadsLogged(logged + 1)).toBe(logged + 1);
  });

  it("syncs over explicit FTPS with the CA from --ca-file, and refuses the server's certificate without it", async () => {
    const tls = ftpUrl(ftp, folder.name, "ftps", "localhost");
    const refused = await runCli(["sync", "--source", tls, "--dest", join(dir, "m2"), "--ftp-password-env", "UM_TEST_FTP_PASS", "--retries", "0"], { env: env() });
    expect(refused.code).not.toBe(0);
    expect(`${refused.stdout}${refused.stderr}`).toMatch(/TLS.*--ca-file/);
    const ok = await runCli(["sync", "--source", tls, "--dest", join(dir, "m2"), "--ftp-password-env", "UM_TEST_FTP_PASS", "--ca-file", ftp.ca], { env: env() });
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect((await readFile(join(dir, "m2", "a/big.bin"))).equals(BIG)).toBe(true);
  });

  it("says clearly that the login was refused, and never shows a password", async () => {
    const wrong = "Wr0ng-ftp-pass";
    const secretFile = join(dir, "wrong-pass");
    await writeFile(secretFile, `${wrong}\n`);
    const log = join(dir, "wrong.log");
    const r = await runCli(["sync", "--source", url, "--dest", join(dir, "m3"), "--ftp-password-file", secretFile, "--retries", "0", "--log-level", "debug", "--log-file", log]);
    expect(r.code).not.toBe(0);
    const output = `${r.stdout}${r.stderr}${await readFile(log, "utf8").catch(() => "")}`;
    expect(output).toMatch(/login refused \(530/);
    expect(output).not.toContain(wrong);
    expect(output).not.toContain(ftp.password);
  });

  it("refuses a password inside the URL without echoing it, and a password for a URL without a user", async () => {
    const inUrl = url.replace("@", ":Inl1ne-secret@");
    const r = await runCli(["sync", "--source", inUrl, "--dest", join(dir, "m4")]);
    expect(r.code).toBe(2);
    expect(`${r.stdout}${r.stderr}`).not.toContain("Inl1ne-secret");
    const noUser = await runCli(["sync", "--source", `ftp://${ftp.url.host}/${folder.name}/`, "--dest", join(dir, "m4"), "--ftp-password-env", "UM_TEST_FTP_PASS"], { env: env() });
    expect(noUser.code).toBe(2);
    expect(noUser.stderr).toMatch(/no ftp:\/\/ or ftps:\/\/ source names a user/);
  });

  it("logs in anonymously when the URL names no user", async () => {
    const anon = await ftpFolder({ ...ftp, root: ftp.anonRoot }, "sync-ftp-anon");
    try {
      await writeTree(anon.dir, { "pub/file.txt": "for everyone\n" });
      const mirror = join(dir, "m6");
      const r = await runCli(["sync", "--source", `ftp://${ftp.url.host}/${anon.name}/`, "--dest", mirror]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(await readFile(join(mirror, "pub/file.txt"), "utf8")).toBe("for everyone\n");
    } finally {
      await anon.remove();
    }
  });

  it("refuses a tree with names a mirror cannot carry, naming each", async () => {
    const bad = await ftpFolder(ftp, "sync-ftp-bad");
    try {
      await writeTree(bad.dir, { "ok.txt": "ok\n", "bad:colon.txt": "x\n", "Case.txt": "1\n", "case.txt": "2\n" });
      const r = await runCli(["sync", "--source", ftpUrl(ftp, bad.name), "--dest", join(dir, "m7"), "--ftp-password-env", "UM_TEST_FTP_PASS"], { env: env() });
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/bad:colon\.txt: name not allowed/);
      expect(r.stderr).toMatch(/differs only in case/);
    } finally {
      await bad.remove();
    }
  });

  it("resumes a download cut half-way with REST, and the result verifies", async () => {
    const proxy = await startFtpCuttingProxy({ host: ftp.url.hostname, port: Number(ftp.url.port) });
    try {
      proxy.cutNext("a/big.bin", 300_000);
      const mirror = join(dir, "m5");
      const r = await runCli(["sync", "--source", ftpUrl(ftp, folder.name, "ftp", "127.0.0.1", String(proxy.port)), "--dest", mirror, "--ftp-password-env", "UM_TEST_FTP_PASS", "--json"], {
        env: env(),
      });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const big = events(r.stdout).filter((e) => e.type === "file:start" && e.path === "a/big.bin");
      expect(big.map((e) => e.offset)).toEqual([0, expect.any(Number)]);
      expect(big[1]?.offset).toBeGreaterThan(0);
      expect(proxy.commands.filter((c) => c.startsWith("REST ")).map((c) => Number(c.slice(5)))).toEqual([big[1]?.offset]);
      expect((await readFile(join(mirror, "a/big.bin"))).equals(BIG)).toBe(true);
      expect((await runCli(["verify", mirror])).code).toBe(0);
    } finally {
      await proxy.close();
    }
  });
});
