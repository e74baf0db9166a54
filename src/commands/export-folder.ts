// Folder export: the medium becomes a complete mirror at the source's version (the engine's replica job), plus its README.
import { InputRefusedError, NotFoundError } from "../core/errors.js";
import type { Manifest } from "../core/manifest.js";
import { maxFileSizeFor } from "../fs/file-systems.js";
import { readMirrorManifest, readMirrorSignature, writeMetadataFile } from "../mirror/metadata.js";
import { createFolderSource } from "../sources/folder.js";
import type { Runtime } from "../cli/runtime.js";
import type { RunSummary } from "../engine/events.js";
import { renderMediumReadme } from "./medium-readme.js";
import { runReplica } from "./replica.js";

export interface FolderExport {
  mirror: string;
  to: string;
  allowRollback: boolean;
  dryRun: boolean;
  json: boolean;
  verbose: boolean;
}

/** The committed manifest of the mirror being exported; NotFoundError when `root` is not a mirror. */
export async function readSourceMirror(root: string): Promise<{ manifest: Manifest; bytes: Buffer; signature?: string }> {
  const loaded = await readMirrorManifest(root);
  if (!loaded) throw new NotFoundError(`${root}: not a mirror (no .update-mirror/manifest.json); sync or index it first`);
  const signature = await readMirrorSignature(root);
  return { ...loaded, ...(signature !== undefined && { signature }) };
}

/**
 * Refuses, before anything is copied, files larger than the target file system takes (4 GiB - 1 on
 * FAT32), naming them: failing on the 5 GiB file after an hour of copying helps no one.
 */
export async function checkFileSizeLimit(manifest: Manifest, target: string, hint: string): Promise<void> {
  const limit = await maxFileSizeFor(target);
  if (limit === undefined) return;
  const big = manifest.files.filter((f) => f.size > limit);
  if (big.length > 0) {
    throw new InputRefusedError(`${target}: the file system there takes files of at most ${limit} bytes; ${hint}`, big.map((f) => `${f.path}: ${f.size} bytes`));
  }
}

export async function exportToFolder(job: FolderExport, rt: Runtime): Promise<RunSummary> {
  const source = await readSourceMirror(job.mirror);
  await checkFileSizeLimit(source.manifest, job.to, "export to an archive with --split-size instead (e.g. --to /media/usb/full.tar --split-size 4G)");
  const summary = await runReplica(
    {
      source: createFolderSource(job.mirror),
      dest: job.to,
      trustKeys: [],
      allowRollback: job.allowRollback,
      // Expiry is the importer's judgement, made on its own clock.
      allowExpired: true,
      keepGenerations: 0,
      dryRun: job.dryRun,
      json: job.json,
      verbose: job.verbose,
      // Recorded in the source mirror's history by `export`: the medium leaves.
      record: false,
    },
    rt,
  );
  if (job.dryRun) return summary;
  const readme = await renderMediumReadme({ kind: "folder", manifest: source.manifest, signed: source.signature !== undefined, medium: job.to });
  await writeMetadataFile(job.to, "README.txt", readme);
  return summary;
}
