// Store registry: turns a `--dest` spec into a Store; the one place that knows every kind.
import { UsageError } from "../core/errors.js";
import type { Store } from "../core/store.js";
import { folderPathOf } from "../core/location.js";
import { createFolderStore } from "./folder.js";

/** Opens the store for `spec`. Throws UsageError for a kind that cannot hold a mirror (yet). */
export function openStore(spec: string): Store {
  const folder = folderPathOf(spec);
  if (folder !== undefined) return createFolderStore(folder);
  throw new UsageError(`destination ${JSON.stringify(spec)}: only folders (a path or file://) can hold a mirror so far`);
}
