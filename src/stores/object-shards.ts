// The objects folder's shard layout for every store that keeps one: listing objects below the shard folders (moving those of the flat 0.1 layout in first), and making the missing shards.
import { eachLimit } from "../core/each-limit.js";
import { isObjectHash, isObjectShard, OBJECT_SHARDS, objectName } from "../mirror/layout.js";

// Shard folders listed or made at once.
const DIR_CONCURRENCY = 8;

/** Folder operations on "/"-separated paths below the objects folder ("" is the folder itself). Throw the store's errors. */
export interface ShardFolders {
  /** The entries of a folder, with sizes where the listing has them; [] when the folder does not exist. */
  list(dir: string): Promise<{ name: string; isDirectory: boolean; size?: number }[]>;
  /** Creates a folder of the objects folder; an existing one is fine. */
  mkdir(dir: string): Promise<void>;
  /** Renames a file, replacing one of the same name. */
  rename(from: string, to: string): Promise<void>;
}

/**
 * Reports every object below the shard folders to `found` and returns the shards that exist. Objects
 * version 0.1 kept directly in the objects folder are moved into their shards first, so a mirror it
 * wrote keeps its retained generations. For the holder of the store's lock only.
 */
export async function listShardedObjects(folders: ShardFolders, found: (sha256: string, size: number | undefined) => void): Promise<Set<string>> {
  const top = await folders.list("");
  const shards = new Set(top.filter((e) => e.isDirectory && isObjectShard(e.name)).map((e) => e.name));
  for (const e of top) {
    if (e.isDirectory || !isObjectHash(e.name)) continue;
    const shard = e.name.slice(0, 2);
    if (!shards.has(shard)) await folders.mkdir(shard);
    shards.add(shard);
    await folders.rename(e.name, objectName(e.name));
  }
  await eachLimit([...shards], DIR_CONCURRENCY, async (shard) => {
    for (const e of await folders.list(shard)) if (!e.isDirectory && isObjectHash(e.name)) found(e.name, e.size);
  });
  return shards;
}

/** Makes every shard folder `shards` does not name (once per mirror), adding each to it. */
export async function makeMissingShards(folders: ShardFolders, shards: Set<string>): Promise<void> {
  await eachLimit(
    OBJECT_SHARDS.filter((shard) => !shards.has(shard)),
    DIR_CONCURRENCY,
    async (shard) => {
      await folders.mkdir(shard);
      shards.add(shard);
    },
  );
}
