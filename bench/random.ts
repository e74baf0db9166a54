// Deterministic bytes for benchmark trees: the same tree on every machine and run.

/** mulberry32: a tiny seeded PRNG yielding unsigned 32-bit integers. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** `size` bytes from `next`, filled a 32-bit word at a time (a trailing remainder stays zero). */
export function randomBuffer(size: number, next: () => number): Buffer {
  const buf = Buffer.alloc(size);
  const words = new Uint32Array(buf.buffer, buf.byteOffset, Math.floor(size / 4));
  for (let i = 0; i < words.length; i++) words[i] = next();
  return buf;
}
