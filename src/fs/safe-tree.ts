// Lists a folder as mirror payload: every regular file outside .update-mirror/, all names safe, or a refusal listing each problem.
import { InputRefusedError } from "../core/errors.js";
import { METADATA_DIR, pathSetConflicts, unsafePathReason } from "../core/safe-path.js";
import { type WalkEntry, walkTree } from "./walk.js";

/**
 * Walks `root` skipping its metadata folder, handing each file to `onFile` as it is found (before the
 * checks, so callers may start work early but must discard it when this throws). Throws InputRefusedError (naming `what` and every
 * symlink, device, unsafe or colliding name at once) when anything cannot be carried by a mirror;
 * NotFoundError/IoError when the root cannot be read.
 */
export async function walkPayload(root: string, what: string, onFile?: (entry: WalkEntry) => void): Promise<WalkEntry[]> {
  const walked = await walkTree(root, { skip: (rel, isDir) => isDir && rel === METADATA_DIR, ...(onFile && { onFile }) });
  const refused = [...walked.refused];
  for (const entry of walked.files) {
    const reason = unsafePathReason(entry.path);
    if (reason !== undefined) refused.push(`${entry.path}: name not allowed in a mirror (${reason})`);
  }
  refused.push(...pathSetConflicts(walked.files.map((f) => f.path)));
  if (refused.length > 0) throw new InputRefusedError(`${what}: ${refused.length} entries a mirror cannot carry`, refused);
  return walked.files;
}
