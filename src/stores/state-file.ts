// A store's state between runs (core/store.ts MirrorState) as a JSON file in its private folder.
import { readFile } from "node:fs/promises";
import { fsError, UpdateMirrorError } from "../core/errors.js";
import type { MirrorState } from "../core/store.js";
import { writeFileAtomic } from "../fs/atomic-write.js";
import { isMissing } from "./staging.js";

const EMPTY_STATE: MirrorState = { highestVersion: 0, sources: {}, trusted: {}, listed: {} };

/** Reads the state, or a fresh one when there is none. Throws IoError naming the file when it is damaged. */
export async function readStateFile(file: string): Promise<MirrorState> {
  try {
    return { ...EMPTY_STATE, ...(JSON.parse(await readFile(file, "utf8")) as Partial<MirrorState>) };
  } catch (err) {
    if (isMissing(err)) return structuredClone(EMPTY_STATE);
    if (err instanceof SyntaxError) throw new UpdateMirrorError("E_IO", `${file}: state file is damaged (${err.message}); remove it to start afresh`);
    throw fsError(err, file);
  }
}

/** Replaces the state atomically (temp file in `tmpDir`, on the same file system). */
export async function writeStateFile(file: string, state: MirrorState, tmpDir: string): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(state)}\n`, { tmpDir });
}
