// A store's state between runs (core/store.ts MirrorState) as a JSON file in its private folder.
import { readFile } from "node:fs/promises";
import { fsError, UpdateMirrorError } from "../core/errors.js";
import type { MirrorState } from "../core/store.js";
import { writeFileAtomic } from "../fs/atomic-write.js";
import { isMissing } from "./staging.js";

const EMPTY_STATE: MirrorState = { highestVersion: 0, sources: {}, trusted: {}, listed: {} };

/** The state in `text` (undefined: there is none yet, so a fresh one). Throws IoError naming `where` when it is damaged. */
export function parseState(text: string | undefined, where: string): MirrorState {
  if (text === undefined) return structuredClone(EMPTY_STATE);
  try {
    return { ...EMPTY_STATE, ...(JSON.parse(text) as Partial<MirrorState>) };
  } catch (err) {
    throw new UpdateMirrorError("E_IO", `${where}: state file is damaged (${(err as Error).message}); remove it to start afresh`);
  }
}

/** The state file's text. */
export function renderState(state: MirrorState): string {
  return `${JSON.stringify(state)}\n`;
}

/** Reads the state, or a fresh one when there is none. Throws IoError naming the file when it is damaged. */
export async function readStateFile(file: string): Promise<MirrorState> {
  let text: string | undefined;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if (!isMissing(err)) throw fsError(err, file);
  }
  return parseState(text, file);
}

/** Replaces the state atomically (temp file in `tmpDir`, on the same file system). */
export async function writeStateFile(file: string, state: MirrorState, tmpDir: string): Promise<void> {
  await writeFileAtomic(file, renderState(state), { tmpDir });
}
