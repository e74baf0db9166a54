// Tests that the entry point's heap setting keeps the young generation small, lets serve release it, and leaves it alone when the user sized it.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/cli.js";

const MODULE = pathToFileURL(join(REPO_ROOT, "dist", "cli", "young-generation.js")).href;

/**
 * Size in MB of V8's new space after a child process allocates many objects that survive scavenges
 * (as parsing a large manifest does), with the young generation left alone, pinned, or pinned then released.
 */
function newSpaceAfterSurvivors(nodeArgs: string[], setting: "none" | "pinned" | "released"): Promise<number> {
  const script = `
    const { pinYoungGeneration, releaseYoungGeneration } = await import(${JSON.stringify(MODULE)});
    if (${JSON.stringify(setting)} !== "none") pinYoungGeneration(process.execArgv, process.env.NODE_OPTIONS);
    if (${JSON.stringify(setting)} === "released") releaseYoungGeneration();
    const v8 = await import("node:v8");
    const kept = [];
    for (let i = 0; i < 400000; i++) kept.push({ i, s: "entry " + i });
    const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
    console.log(space.space_size / 1048576, kept.length);`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...nodeArgs, "--input-type=module", "-e", script], { env: { ...process.env, NODE_OPTIONS: "" } }, (err, stdout) => {
      if (err) reject(err);
      else resolve(Number(stdout.trim().split(" ")[0]));
    });
  });
}

describe("young generation setting (cli/young-generation.ts)", () => {
  it("keeps the new space at its starting size where V8 alone would grow it", async () => {
    const [alone, pinned] = await Promise.all([newSpaceAfterSurvivors([], "none"), newSpaceAfterSurvivors([], "pinned")]);
    expect(alone).toBeGreaterThan(4);
    expect(pinned).toBeLessThanOrEqual(4);
  });

  it("lets it grow again once released (serve)", async () => {
    expect(await newSpaceAfterSurvivors([], "released")).toBeGreaterThan(4);
  });

  it("leaves the young generation to a user who sized it with --max-semi-space-size", async () => {
    expect(await newSpaceAfterSurvivors(["--max-semi-space-size=8"], "pinned")).toBeGreaterThan(4);
  });
});
