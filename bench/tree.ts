// The benchmark trees: ~40,000 small files in nested folders plus a few large ones, the same bytes on every machine.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { randomBuffer } from "./random.js";

const MiB = 1024 * 1024;

export interface TreeShape {
  smallFiles: number;
  filesPerFolder: number;
  topFolders: number;
  minSize: number;
  maxSize: number;
  largeMiB: readonly number[];
}

export interface ContentMaker {
  /** `size` bytes at a random offset of the pool. */
  slice(size: number): Buffer;
  /** A small file's size, between the shape's minSize and maxSize. */
  smallSize(): number;
}

/** File contents are slices of one random pool at random offsets: distinct per file and fast to produce. */
export function contentMaker(next: () => number, shape: Pick<TreeShape, "minSize" | "maxSize">): ContentMaker {
  const pool = randomBuffer(32 * MiB, next);
  return {
    slice(size) {
      const offset = next() % (pool.length - size);
      return pool.subarray(offset, offset + size);
    },
    smallSize: () => shape.minSize + (next() % (shape.maxSize - shape.minSize + 1)),
  };
}

/**
 * Writes the tree under `root`: small files as top-NN/dir NN/file-NNNNN.bin (a space in every folder
 * name, so each client's URL encoding is exercised), large ones as `large.folder`/`large.name(mib)`.
 */
export function writeBenchTree(root: string, shape: TreeShape, large: { folder: string; name: (mib: number) => string }, next: () => number): void {
  const { slice, smallSize } = contentMaker(next, shape);
  const folders = Math.ceil(shape.smallFiles / shape.filesPerFolder);
  const perTop = Math.ceil(folders / shape.topFolders);
  for (let i = 0; i < shape.smallFiles; i++) {
    const folder = Math.floor(i / shape.filesPerFolder);
    const dir = path.join(root, `top-${String(Math.floor(folder / perTop)).padStart(2, "0")}`, `dir ${String(folder % perTop).padStart(2, "0")}`);
    if (i % shape.filesPerFolder === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `file-${String(i).padStart(5, "0")}.bin`), slice(smallSize()));
  }
  mkdirSync(path.join(root, large.folder), { recursive: true });
  for (const mib of shape.largeMiB) {
    const fd = openSync(path.join(root, large.folder, large.name(mib)), "w");
    try {
      for (let written = 0; written < mib * MiB; written += 4 * MiB) writeSync(fd, slice(4 * MiB));
    } finally {
      closeSync(fd);
    }
  }
}
