// A store's run history as JSON lines in its private folder: appended one line at a time, bounded by rotating into one older file.
import { appendFile, mkdir, readFile, rename, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { fsError } from "../core/errors.js";
import type { RunRecord } from "../core/store.js";
import { isMissing } from "./staging.js";

/** The history file's name in a store's private folder. */
export const HISTORY_NAME = "history.jsonl";

/** Past this size the file becomes `<file>.1` (replacing the older one): the history never exceeds about twice this. */
export const HISTORY_ROTATE_BYTES = 256 * 1024;

/** The records in `text` (JSON lines), oldest first; a torn or foreign line is skipped, not fatal. */
export function parseHistory(text: string): RunRecord[] {
  const records: RunRecord[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const record = JSON.parse(line) as RunRecord;
      if (typeof record.started === "string" && typeof record.result === "string") records.push(record);
    } catch {
      // A line cut by a crash mid-append: the records around it still count.
    }
  }
  return records;
}

export function historyLine(record: RunRecord): string {
  return `${JSON.stringify(record)}\n`;
}

/**
 * Appends `record` to the history file `file`. One append of one line, so writers that do not hold
 * the store's lock (an export reading the mirror) never interleave with one that does. Throws IoError.
 */
export async function appendHistoryFile(file: string, record: RunRecord): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true });
    const size = await stat(file).then(
      (s) => s.size,
      (err: unknown) => (isMissing(err) ? 0 : Promise.reject(err)),
    );
    if (size >= HISTORY_ROTATE_BYTES) {
      // Two writers rotating at once: the second rename finds nothing to move, and both append to the new file.
      await rename(file, `${file}.1`).catch((err: unknown) => {
        if (!isMissing(err)) throw err;
      });
    }
    await appendFile(file, historyLine(record));
  } catch (err) {
    throw fsError(err, `${file}: recording the run`);
  }
}

/** Every record of the history file `file` and its rotated predecessor, oldest first. Throws IoError. */
export async function readHistoryFile(file: string): Promise<RunRecord[]> {
  const read = (path: string) =>
    readFile(path, "utf8").catch((err: unknown) => {
      if (isMissing(err)) return "";
      throw fsError(err, path);
    });
  const [older, newer] = await Promise.all([read(`${file}.1`), read(file)]);
  return [...parseHistory(older), ...parseHistory(newer)];
}
