// `sync --source smb://...` through the built CLI against the real Samba of .ci/samba.sh: paged listings, byte-exact large reads, no-op re-runs, clear refusals.
import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_HTTP_OPTIONS } from "../../src/net/http-options.js";
import { createSmbSource } from "../../src/sources/smb.js";
import { jsonEvents, runCli, scratchDir, writeTree } from "../support/cli.js";
import { SMB_SKIP_REASON, smbFolder, smbService, smbUrl } from "../servers/smb-service.js";

const service = smbService();
if (service === undefined) console.warn(`skipping SMB sync tests: ${SMB_SKIP_REASON}`);

interface Event {
  type: string;
  path?: string;
  summary?: { result: string; added: number; updated: number; removed: number };
}
const events = (stdout: string) => jsonEvents<Event>(stdout);

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe.skipIf(service === undefined)("sync from SMB (Samba)", () => {
  const smb = service as NonNullable<typeof service>;
  // More than one QUERY_DIRECTORY page (about 370 entries each) in one folder, and a file far larger than
  // one 64 KiB read, which Samba's async I/O answers with STATUS_PENDING first.
  const MANY = 1_200;
  const BIG = randomBytes(20 * 1024 * 1024 + 123);
  const tree: Record<string, Buffer | string> = { "big/payload.bin": BIG, "top level.txt": "top\n" };
  for (let i = 0; i < MANY; i++) tree[`many/f${String(i).padStart(4, "0")}.txt`] = `file ${i}\n`;
  let dir: string;
  let cleanup: () => Promise<void>;
  let folder: Awaited<ReturnType<typeof smbFolder>>;
  let url: string;
  const env = () => ({ ...process.env, UM_TEST_SMB_PASS: smb.password });

  beforeAll(async () => {
    ({ dir, cleanup } = await scratchDir("sync-smb"));
    folder = await smbFolder(smb, "sync-smb");
    await writeTree(folder.dir, tree);
    url = smbUrl(smb, folder.name);
  });
  afterAll(async () => {
    await folder?.remove();
    await cleanup?.();
  });

  it("copies a tree with 1,200 files in one folder and a 20 MB file byte for byte, it verifies, and a re-run fetches nothing", async () => {
    const mirror = join(dir, "m1");
    const first = await runCli(["sync", "--source", url, "--dest", mirror, "--smb-password-env", "UM_TEST_SMB_PASS", "--json"], { env: env() });
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(events(first.stdout).filter((e) => e.type === "file:start")).toHaveLength(Object.keys(tree).length);
    expect((await readdir(join(mirror, "many"))).length).toBe(MANY);
    expect(await readFile(join(mirror, "many/f1199.txt"), "utf8")).toBe("file 1199\n");
    expect(sha256(await readFile(join(mirror, "big/payload.bin")))).toBe(sha256(BIG));
    expect((await runCli(["verify", mirror])).code).toBe(0);

    const again = await runCli(["sync", "--source", url, "--dest", mirror, "--smb-password-env", "UM_TEST_SMB_PASS", "--json"], { env: env() });
    expect(again.stderr).toBe("");
    expect(again.code).toBe(0);
    expect(events(again.stdout).filter((e) => e.type === "file:start")).toEqual([]);
    expect(events(again.stdout).find((e) => e.type === "run:done")?.summary?.result).toBe("unchanged");
  });

  it("reads the 20 MB file byte for byte past Samba's STATUS_PENDING replies (and reports the rate)", async () => {
    const source = createSmbSource(url, { http: DEFAULT_HTTP_OPTIONS, password: smb.password });
    try {
      const rates: number[] = [];
      for (let run = 0; run < 3; run++) {
        const started = performance.now();
        const opened = await source.open("big/payload.bin", { expectedSize: BIG.length });
        const hash = createHash("sha256");
        let total = 0;
        for await (const chunk of opened.body) {
          hash.update(chunk);
          total += chunk.length;
        }
        rates.push(total / 1048576 / ((performance.now() - started) / 1000));
        expect(total).toBe(BIG.length);
        expect(hash.digest("hex")).toBe(sha256(BIG));
      }
      console.log(`SMB read of ${BIG.length} bytes: ${rates.map((r) => r.toFixed(0)).join(", ")} MiB/s`);
      const resumed = await source.open("big/payload.bin", { offset: BIG.length - 100_000, expectedSize: BIG.length });
      const chunks: Buffer[] = [];
      for await (const chunk of resumed.body) chunks.push(Buffer.from(chunk));
      expect(Buffer.concat(chunks).equals(BIG.subarray(BIG.length - 100_000))).toBe(true);
    } finally {
      await source.close();
    }
  });

  it("says clearly that the login was refused, and never shows a password", async () => {
    const wrong = "Wr0ng-smb-pass";
    const secretFile = join(dir, "wrong-pass");
    await writeFile(secretFile, `${wrong}\n`);
    const log = join(dir, "wrong.log");
    const r = await runCli(["sync", "--source", url, "--dest", join(dir, "m2"), "--smb-password-file", secretFile, "--retries", "0", "--log-level", "debug", "--log-file", log]);
    expect(r.code).not.toBe(0);
    const output = `${r.stdout}${r.stderr}${await readFile(log, "utf8").catch(() => "")}`;
    expect(output).toMatch(/login refused for user "[^"]+" \(STATUS_LOGON_FAILURE\)/);
    expect(output).toMatch(/--smb-password-env or --smb-password-file/);
    expect(output).not.toContain(wrong);
    expect(output).not.toContain(smb.password);
  });

  it("refuses a password inside the URL without echoing it, and a password for a URL without a user", async () => {
    const inUrl = url.replace("@", ":Inl1ne-secret@");
    const r = await runCli(["sync", "--source", inUrl, "--dest", join(dir, "m3")]);
    expect(r.code).toBe(2);
    expect(`${r.stdout}${r.stderr}`).not.toContain("Inl1ne-secret");
    const noUser = await runCli(["sync", "--source", url.replace(/\/\/[^@]+@/, "//"), "--dest", join(dir, "m3"), "--smb-password-env", "UM_TEST_SMB_PASS"], { env: env() });
    expect(noUser.code).toBe(2);
    expect(noUser.stderr).toMatch(/no smb:\/\/ source or destination names a user/);
  });

  it("refuses a tree with names a mirror cannot carry, naming each", async () => {
    const bad = await smbFolder(smb, "sync-smb-bad");
    try {
      await writeTree(bad.dir, { "ok.txt": "ok\n", "Case.txt": "1\n", "case.txt": "2\n", "trailing.": "x\n" });
      const r = await runCli(["sync", "--source", smbUrl(smb, bad.name), "--dest", join(dir, "m4"), "--smb-password-env", "UM_TEST_SMB_PASS"], { env: env() });
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/differs only in case/);
    } finally {
      await bad.remove();
    }
  });

  it.skipIf(service?.signingUrl === undefined)("explains that a server requiring signing cannot be used, and how to mount the share instead", async () => {
    const signing = smbUrl(smb, folder.name, (smb.signingUrl as URL).port);
    const r = await runCli(["sync", "--source", signing, "--dest", join(dir, "m5"), "--smb-password-env", "UM_TEST_SMB_PASS", "--retries", "0"], { env: env() });
    expect(r.code).not.toBe(0);
    const output = `${r.stdout}${r.stderr}`;
    expect(output).toMatch(/requires SMB signing/);
    expect(output).toMatch(/Mount the share instead.*mount -t cifs.*UNC path.*mounted folder as the source/);
    expect(output).not.toContain(smb.password);
  });
});
