// Sample trees and helpers for archive tests: entries to write (in memory or streamed) and reading entries back.
import { createHash, randomBytes } from "node:crypto";
import type { ArchiveReader } from "../../src/archive/reader.js";
import type { ArchiveInput } from "../../src/archive/writer.js";

/** A tree to archive: name -> bytes, in the order to write. */
export type Tree = [name: string, data: Buffer][];

/** Awkward names (spaces, NFC unicode, '#', '%'), an empty file, metadata first, and a few larger files. */
export function sampleTree(): Tree {
  return [
    [".update-mirror/manifest.json", Buffer.from('{"format":"update-mirror/1"}\n')],
    [".update-mirror/manifest.json.minisig", Buffer.from("untrusted comment: test\n")],
    ["empty.txt", Buffer.alloc(0)],
    ["with space/file name.txt", Buffer.from("spaces")],
    ["ünïcødé/日本語/файл.txt".normalize("NFC"), Buffer.from("unicode")],
    ["odd/#hash%percent.bin", randomBytes(1000)],
    ["deep/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/long-enough-to-need-a-prefix-or-pax-header.dat", randomBytes(700)],
    ["mid/300k.bin", randomBytes(300 * 1024)],
    ["mid/1500k.bin", randomBytes(1500 * 1024)],
    ["z/last.txt", Buffer.from("last")],
  ];
}

/** The tree as writer inputs: `data` buffers, or `stream()`s yielding uneven chunks. */
export async function* inputsOf(tree: Tree, how: "buffer" | "stream", mtime = new Date("2024-05-06T07:08:10Z")): AsyncGenerator<ArchiveInput> {
  for (const [name, data] of tree) {
    if (how === "buffer") {
      yield { name, size: data.length, mtime, data };
    } else {
      yield {
        name,
        size: data.length,
        mtime,
        async *stream() {
          for (let at = 0; at < data.length; at += 70_001) yield data.subarray(at, at + 70_001);
        },
      };
    }
  }
}

/** All bytes of an entry from `offset`. */
export async function readEntry(reader: ArchiveReader, name: string, offset?: number): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of reader.open(name, offset)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export const sha256 = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");
