// Builds large UTF-8 documents (manifests, SHA256SUMS) piece by piece into one buffer.

/**
 * Appends text to a growing buffer. Writing each piece as it is made lets the pieces die young: a
 * `map(...).join("")` over 40,000 entries keeps them all alive into the old generation first, and
 * the joined string is one more copy of the whole document.
 */
export class Utf8Builder {
  private buf: Buffer;
  private used = 0;

  /** `estimate`: the expected size in bytes; a good guess saves growing and a final copy. */
  constructor(estimate: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, estimate));
  }

  put(text: string): void {
    // Three bytes per UTF-16 unit is the most UTF-8 needs, so a write never comes out short.
    if (this.buf.length - this.used < text.length * 3) {
      const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + text.length * 3));
      this.buf.copy(bigger, 0, 0, this.used);
      this.buf = bigger;
    }
    this.used += this.buf.write(text, this.used, "utf8");
  }

  /** The bytes written; a copy of exactly that size when the estimate left much unused. Call once. */
  bytes(): Buffer {
    const view = this.buf.subarray(0, this.used);
    return this.buf.length - this.used > this.used / 8 ? Buffer.from(view) : view;
  }
}
