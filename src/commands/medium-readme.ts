// The README.txt written onto every medium, from dist-templates/medium-README.txt, telling the person at the other end what to run.
import { readFile } from "node:fs/promises";
import { formatTimestamp, type Manifest, totalBytes } from "../core/manifest.js";
import { formatBytes } from "../cli/format.js";

export interface ReadmeFacts {
  kind: "folder" | "archive" | "delta archive";
  manifest: Manifest;
  signed: boolean;
  /** How the person at the other end names the medium in the import command. */
  medium: string;
  /** For a delta: its base version and how many files it carries. */
  delta?: { baseVersion: number; files: number; bytes: number };
}

const TEMPLATE = new URL("../../dist-templates/medium-README.txt", import.meta.url);

export async function renderMediumReadme(facts: ReadmeFacts, now = new Date()): Promise<Buffer> {
  const template = await readFile(TEMPLATE, "utf8");
  const { manifest, delta } = facts;
  const values: Record<string, string> = {
    kind: facts.kind,
    version: String(manifest.version),
    created: manifest.created,
    exported: formatTimestamp(now),
    signed: facts.signed ? "yes (minisign, .update-mirror/manifest.json.minisig)" : "NO - the importer cannot check where it came from",
    contents: delta
      ? `${delta.files} changed or added files (${formatBytes(delta.bytes)}) since version ${delta.baseVersion}`
      : `${manifest.files.length} files (${formatBytes(totalBytes(manifest))})`,
    medium: facts.medium,
    deltaNote: delta
      ? `This is a delta: the mirror it is imported into must be at version ${delta.baseVersion}\n(or hold every unchanged file); otherwise import stops and changes nothing.\n\n`
      : "",
  };
  return Buffer.from(template.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => values[key] ?? whole), "utf8");
}
