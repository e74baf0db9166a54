// README.md promises: its exit-code table matches the code's one table, and it opens with the two commands.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT } from "../../src/cli/exit-codes.js";
import { REPO_ROOT } from "../support/cli.js";

const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");

describe("README.md", () => {
  it("documents exactly the exit codes the CLI uses", () => {
    const section = readme.split("## Exit codes")[1]?.split("\n## ")[0] ?? "";
    const documented = [...section.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
    expect(documented).toEqual([...new Set(Object.values(EXIT))].sort((a, b) => a - b));
  });

  it("opens with the example command and the test command", () => {
    const block = readme.split("```sh\n")[1]?.split("```")[0] ?? "";
    expect(block).toMatch(/^npm ci && npm run example/m);
    expect(block).toMatch(/^npm ci && npm test/m);
  });
});
