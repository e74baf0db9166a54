// Range request headers (RFC 9110 §14): one satisfiable byte range gives a 206; several are answered whole.

/** What a Range header asks of a representation of `size` bytes. */
export type RangeRequest =
  /** No Range header, or one the server ignores (another unit, bad syntax): answer 200 with everything. */
  | { kind: "none" }
  /** One satisfiable range, `start` to `end` inclusive: answer 206 with Content-Range. */
  | { kind: "single"; start: number; end: number }
  /**
   * Two or more ranges of which at least one is satisfiable. RFC 9110 §14.2 lets a server ignore
   * Range; this server answers 200 with the whole body rather than multipart/byteranges, which
   * download agents rarely ask for and which is a known amplification vector.
   */
  | { kind: "multiple" }
  /** No range overlaps the representation: answer 416 with `Content-Range: bytes *\/size`. */
  | { kind: "unsatisfiable" };

const NONE: RangeRequest = { kind: "none" };
// More specs than this is abuse, not a download agent: ignore the header and send the whole body.
const MAX_SPECS = 64;
const RANGE_SPEC = /^(\d*)-(\d*)$/;

function toNumber(digits: string): number {
  // Beyond 2^53 precision is lost, but such a position is past any file's end either way.
  return digits.length > 15 ? Number.MAX_SAFE_INTEGER : Number(digits);
}

/**
 * Parses a Range header against a representation of `size` bytes. The unit `bytes` is matched
 * case-insensitively; whitespace around commas is allowed; any malformed spec (a suffix of no digits,
 * first > last, other characters) makes the whole header ignored, as the RFC requires.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return NONE;
  const eq = header.indexOf("=");
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== "bytes") return NONE;
  const specs = header.slice(eq + 1).split(",");
  if (specs.length > MAX_SPECS) return NONE;
  let satisfiable: { start: number; end: number } | undefined;
  let count = 0;
  let seen = 0;
  for (const raw of specs) {
    const spec = raw.trim();
    // Empty list elements are allowed by the list syntax (RFC 9110 §5.6.1) and carry nothing.
    if (spec === "") continue;
    seen += 1;
    const match = RANGE_SPEC.exec(spec);
    if (!match) return NONE;
    const first = match[1] ?? "";
    const last = match[2] ?? "";
    if (first === "") {
      if (last === "") return NONE;
      const length = toNumber(last);
      if (length > 0 && size > 0) {
        count += 1;
        satisfiable ??= { start: Math.max(0, size - length), end: size - 1 };
      }
      continue;
    }
    const start = toNumber(first);
    const end = last === "" ? undefined : toNumber(last);
    if (end !== undefined && end < start) return NONE;
    if (start < size) {
      count += 1;
      satisfiable ??= { start, end: Math.min(end ?? size - 1, size - 1) };
    }
  }
  if (seen === 0) return NONE;
  if (count === 0) return { kind: "unsatisfiable" };
  if (seen > 1) return { kind: "multiple" };
  return { kind: "single", ...(satisfiable as { start: number; end: number }) };
}
