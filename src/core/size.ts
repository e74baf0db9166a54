// Byte sizes as people write them ("4G", "700M", "512k", "65536"): one parser for every size and rate setting.
import { UsageError } from "./errors.js";

const UNIT: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Parses a byte count with an optional binary unit (k, M, G, T; "KiB"/"MB" spellings accepted). Undefined when malformed. */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!match) return undefined;
  const unit = UNIT[(match[2] ?? "").toLowerCase()];
  return unit === undefined ? undefined : Math.floor(Number(match[1]) * unit);
}

/** parseByteSize for a setting: throws UsageError naming `setting` when malformed. */
export function byteSizeSetting(text: string, setting: string): number {
  const bytes = parseByteSize(text);
  if (bytes === undefined) throw new UsageError(`${setting}: ${JSON.stringify(text)} is not a size (use e.g. 4G, 700M, 512k or a byte count)`);
  return bytes;
}
