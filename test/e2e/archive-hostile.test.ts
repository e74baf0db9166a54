// Hostile archives (built by Python, never by our writer) are refused whole, before any entry is returned, naming the entry.
import { readdir } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openArchive } from "../../src/archive/reader.js";
import { InputRefusedError } from "../../src/core/errors.js";
import { scratchDir } from "../support/cli.js";
import { buildHostile, HOSTILE_CASES, hasPython } from "../support/hostile-archives.js";

if (!hasPython) console.warn("skipping the hostile archive checks: python3 (which builds them) is not installed");

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await scratchDir("archive-hostile"));
});
afterAll(async () => cleanup());

describe.skipIf(!hasPython)("hostile archives", () => {
  it.each(HOSTILE_CASES.map((c) => [c.kind, c] as const))("%s is refused with InputRefusedError naming what is wrong", async (_kind, hostile) => {
    const path = await buildHostile(dir, hostile);
    const before = (await readdir(dir)).sort();
    const err = await openArchive(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputRefusedError);
    const message = (err as Error).message;
    expect(message).toContain(hostile.names);
    // The message names the archive (or its volume set) too.
    expect(message).toContain(hostile.file.replace(/\.001$/, ""));
    // Reading never writes.
    expect((await readdir(dir)).sort()).toEqual(before);
  });
});
