// A source without a manifest where some files fail: what verified is published, failures keep their previous version, nothing is deleted.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { SourceError } from "../../src/core/errors.js";
import type { Source } from "../../src/core/source.js";
import type { EngineEvent, RunSummary } from "../../src/engine/events.js";
import { SELECT_ALL } from "../../src/engine/select.js";
import { runSync } from "../../src/engine/sync.js";
import { readMirrorManifest } from "../../src/mirror/metadata.js";
import { verifyTree } from "../../src/mirror/verify-tree.js";
import { createFolderSource } from "../../src/sources/folder.js";
import { createFolderStore } from "../../src/stores/folder.js";
import { DEFAULT_RETRY } from "../../src/wrap/retry.js";

async function writeTree(root: string, tree: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(tree)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

/** The folder source, except that opening any path in `failing` fails the way an unreachable share does. */
function withFailingPaths(source: Source, failing: Set<string>): Source {
  return {
    ...source,
    async open(path, options) {
      if (failing.has(path)) throw new SourceError(`${source.label}: ${path}: connection reset (injected)`);
      return source.open(path, options);
    },
  };
}

describe("sync from a source without a manifest, when some files fail", () => {
  it("publishes what verified, keeps failures as they were, deletes nothing, and completes next run", async ({ onTestFinished }) => {
    const dir = await mkdtemp(join(tmpdir(), "um-partial-"));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const upstream = join(dir, "upstream");
    const mirror = join(dir, "mirror");
    await writeTree(upstream, { "a.dat": "a v1\n", "b.dat": "b v1\n", "old/c.dat": "c v1\n" });
    const failing = new Set<string>();
    const store = createFolderStore(mirror);
    let events: EngineEvent[] = [];
    const sync = (): Promise<RunSummary> => {
      events = [];
      return runSync({
        sources: [withFailingPaths(createFolderSource(upstream), failing)],
        store,
        selection: SELECT_ALL,
        tagRules: [],
        trust: { keys: [], allowRollback: false, allowExpired: false },
        dryRun: false,
        concurrency: 2,
        retry: { ...DEFAULT_RETRY, attempts: 2, sleep: async () => undefined },
        maxDelete: { percent: 100 },
        keepGenerations: 2,
        emit: (e) => events.push(e),
      });
    };
    const content = async (path: string) => (await readFile(join(mirror, path), "utf8").catch(() => undefined));
    const listed = async () => (await readMirrorManifest(mirror))?.manifest.files.map((f) => f.path);

    const first = await sync();
    expect(first).toMatchObject({ result: "updated", added: 3, failed: 0 });

    await writeTree(upstream, { "b.dat": "b v2, longer\n", "new/d.dat": "d v1\n", "new/e.dat": "e v1\n" });
    await rm(join(upstream, "old"), { recursive: true });
    failing.add("b.dat");
    failing.add("new/e.dat");
    const second = await sync();
    expect(second).toMatchObject({ result: "partial", added: 1, updated: 0, removed: 0, failed: 2, previousVersion: first.version });
    expect(second.version).toBe((first.version ?? 0) + 1);
    expect(events.filter((e) => e.type === "file:failed").map((e) => (e as { path: string }).path).sort()).toEqual(["b.dat", "new/e.dat"]);
    expect(await content("b.dat")).toBe("b v1\n");
    expect(await content("old/c.dat")).toBe("c v1\n");
    expect(await content("new/d.dat")).toBe("d v1\n");
    expect(await content("new/e.dat")).toBeUndefined();
    expect(await listed()).toEqual(["a.dat", "b.dat", "new/d.dat", "old/c.dat"]);
    expect((await verifyTree(mirror, { workers: 1 })).ok).toBe(true);

    // Same failures again: nothing new can be published, and the run still says so.
    const again = await sync();
    expect(again).toMatchObject({ result: "partial", failed: 2, version: second.version });

    failing.clear();
    const third = await sync();
    expect(third).toMatchObject({ result: "updated", added: 1, updated: 1, removed: 1, failed: 0 });
    expect(await content("b.dat")).toBe("b v2, longer\n");
    expect(await content("new/e.dat")).toBe("e v1\n");
    expect(await content("old/c.dat")).toBeUndefined();
    expect(await listed()).toEqual(["a.dat", "b.dat", "new/d.dat", "new/e.dat"]);
    expect((await verifyTree(mirror, { workers: 1 })).ok).toBe(true);
  });
});
