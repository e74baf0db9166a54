// Keeps the import graph pointing one way (see docs/architecture.md) by reading every source file's imports.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/cli.js";

const SRC = join(REPO_ROOT, "src");
// Each layer may import only from the layers listed for it (and from itself).
// The engine gets Sources and Stores passed in and never imports a concrete kind.
const ALLOWED: Record<string, string[]> = {
  core: [],
  version: [],
  crypto: ["core"],
  fs: ["core"],
  hash: ["core"],
  net: ["core"],
  wrap: ["core"],
  config: ["core"],
  smb: ["core"],
  archive: ["core", "fs"],
  mirror: ["core", "crypto", "fs", "hash", "config", "version"],
  sources: ["core", "archive", "fs", "mirror", "net", "smb"],
  stores: ["core", "fs", "mirror", "net", "smb"],
  engine: ["core", "crypto", "mirror", "wrap", "version"],
  serve: ["core", "fs", "mirror", "net", "config", "crypto"],
  cli: ["core", "config", "crypto", "engine", "net", "wrap", "commands", "version"],
  jobs: ["core", "config", "engine", "cli", "wrap"],
  commands: ["core", "archive", "fs", "config", "crypto", "mirror", "engine", "net", "sources", "stores", "wrap", "cli", "serve", "jobs", "version"],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

describe("architecture", () => {
  it("imports point one way between layers", () => {
    const violations: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const rel = relative(SRC, file);
      const layer = rel.includes("/") ? rel.split("/")[0] ?? "" : rel.replace(/\.ts$/, "");
      const allowed = ALLOWED[layer];
      if (!allowed) {
        violations.push(`${rel} is in a layer the architecture test does not know (${layer}); add it to ALLOWED`);
        continue;
      }
      for (const match of readFileSync(file, "utf8").matchAll(/from "(\.\.?\/[^"]+)"/g)) {
        const target = relative(SRC, join(file, "..", match[1] ?? ""));
        const targetLayer = target.includes("/") ? target.split("/")[0] ?? "" : target.replace(/\.js$/, "");
        if (targetLayer !== layer && !allowed.includes(targetLayer)) violations.push(`${rel} imports ${target}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it("every source file opens with a one-line comment saying what it is for", () => {
    const missing = sourceFiles(SRC).filter((f) => !readFileSync(f, "utf8").startsWith("// ")).map((f) => relative(SRC, f));
    expect(missing).toEqual([]);
  });

  it("only cli/main.ts calls process.exit", () => {
    const callers = sourceFiles(SRC).filter((f) => readFileSync(f, "utf8").includes("process.exit(")).map((f) => relative(SRC, f));
    expect(callers).toEqual(["cli/main.ts"]);
  });
});
