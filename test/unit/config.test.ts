// Config loading: valid files, `dot.path: message` errors, secrets by reference, and the shipped schema.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { problemsOf } from "../support/config-problems.js";
import { defaultConfig, loadConfigFile, validateConfig } from "../../src/config/load.js";
import { renderConfigJsonSchema } from "../../src/config/schema.js";
import { resolveSecret } from "../../src/config/secrets.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "um-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});


describe("config", () => {
  it("defaults to no tag rules", () => {
    expect(defaultConfig().tags).toEqual([]);
  });

  it("gives the defaults the schema gives, without loading the schema", () => {
    expect(defaultConfig()).toEqual(validateConfig({}, "defaults"));
  });

  it("loads the shipped example", async () => {
    const config = await loadConfigFile(new URL("../../config/example.config.json", import.meta.url).pathname);
    expect(config.tags.length).toBeGreaterThan(0);
  });

  it("names the dot.path of each problem", () => {
    const problems = problemsOf({ tags: [{ match: "a/**", set: { product: "x" } }, { match: "", set: { colour: "red" } }], extra: true });
    expect(problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^tags\[1\]\.match: /), expect.stringMatching(/^tags\[1\]\.set: .*colour/), expect.stringMatching(/^\(top level\): .*extra/)]),
    );
  });

  it("refuses a rule that sets nothing", () => {
    expect(problemsOf({ tags: [{ match: "a", set: {} }] })).toEqual([expect.stringMatching(/^tags\[0\]\.set: must set at least one tag/)]);
  });

  it("names the file when it is not JSON or missing", async () => {
    const bad = join(dir, "bad.json");
    await writeFile(bad, "{ tags: [] }");
    await expect(loadConfigFile(bad)).rejects.toThrow(new RegExp(`config file ${bad}: not valid JSON`));
    await expect(loadConfigFile(join(dir, "missing.json"))).rejects.toThrow(/missing\.json.*not found/);
  });

  it("ships a JSON Schema that matches the code (run `npm run schema` when this fails)", async () => {
    const shipped = await readFile(new URL("../../config/update-mirror.schema.json", import.meta.url), "utf8");
    expect(shipped).toBe(renderConfigJsonSchema());
  });
});

describe("resolveSecret", () => {
  it("reads an environment variable without echoing its value in errors", async () => {
    process.env.UM_TEST_SECRET = "s3cret-value";
    expect(await resolveSecret({ env: "UM_TEST_SECRET" }, "passphrase")).toBe("s3cret-value");
    delete process.env.UM_TEST_SECRET;
    await expect(resolveSecret({ env: "UM_TEST_SECRET" }, "passphrase")).rejects.toThrow(/passphrase: environment variable UM_TEST_SECRET is not set/);
  });

  it("reads a file and drops one trailing newline", async () => {
    const file = join(dir, "pass");
    await writeFile(file, "pa ss\n");
    expect(await resolveSecret({ file }, "passphrase")).toBe("pa ss");
    await writeFile(file, "\n");
    await expect(resolveSecret({ file }, "passphrase")).rejects.toThrow(/is empty/);
  });

  it("refuses both sources at once and returns undefined for none", async () => {
    await expect(resolveSecret({ env: "X", file: "y" }, "passphrase")).rejects.toThrow(/not both/);
    expect(await resolveSecret({}, "passphrase")).toBeUndefined();
  });
});
