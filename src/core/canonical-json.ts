// Canonical JSON (RFC 8785 for the values manifests hold): one byte sequence per value, so signatures are stable.

/** A JSON value restricted to what canonical manifests may contain (integers only, no floats). */
export type CanonicalValue = string | number | boolean | null | CanonicalValue[] | { [key: string]: CanonicalValue | undefined };

/**
 * Serializes with object keys sorted by UTF-16 code units (RFC 8785 §3.2.3), no insignificant
 * whitespace, and JSON.stringify's string escaping (which RFC 8785 adopts). Keys whose value is
 * undefined are omitted. Throws TypeError for non-integer or unsafe numbers, which v1 never uses.
 */
export function canonicalJson(value: CanonicalValue): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new TypeError(`canonical JSON holds only safe integers, got ${value}`);
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] as CanonicalValue)}`).join(",")}}`;
}
