// Client address allow-list from CIDR blocks, IPv4 and IPv6, with IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) treated as IPv4.
import { isIPv4, isIPv6 } from "node:net";
import { UsageError } from "../core/errors.js";

/** Decides which client addresses may use the server. */
export interface AllowList {
  /** True when `address` (as Node reports a peer: dotted IPv4, IPv6, or IPv4-mapped IPv6) is inside a listed block. */
  allows(address: string | undefined): boolean;
  /** The blocks as given, for logs. */
  readonly blocks: readonly string[];
}

interface Block {
  v6: boolean;
  network: bigint;
  prefix: number;
}

function parseIPv4(text: string): bigint | undefined {
  if (!isIPv4(text)) return undefined;
  return text.split(".").reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function parseIPv6(text: string): bigint | undefined {
  const address = text.replace(/%.*$/, "");
  if (!isIPv6(address)) return undefined;
  let hex = address;
  // An embedded dotted IPv4 tail (::ffff:10.0.0.1) is two hex groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (dotted) {
    const v4 = parseIPv4(dotted[1] as string);
    if (v4 === undefined) return undefined;
    hex = `${address.slice(0, dotted.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = hex.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string | undefined) => (part === undefined || part === "" ? [] : part.split(":"));
  const left = groups(halves[0]);
  const right = groups(halves[1]);
  const fill = halves.length === 2 ? 8 - left.length - right.length : 0;
  const all = [...left, ...Array<string>(Math.max(0, fill)).fill("0"), ...right];
  if (all.length !== 8) return undefined;
  return all.reduce((acc, group) => (acc << 16n) | BigInt(Number.parseInt(group, 16)), 0n);
}

const MAPPED_PREFIX = 0xffffn << 32n;

/** An address as a comparable number; IPv4-mapped IPv6 comes back as IPv4. */
export function parseAddress(text: string): { v6: boolean; value: bigint } | undefined {
  const v4 = parseIPv4(text);
  if (v4 !== undefined) return { v6: false, value: v4 };
  const v6 = parseIPv6(text);
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === MAPPED_PREFIX >> 32n) return { v6: false, value: v6 & 0xffffffffn };
  return { v6: true, value: v6 };
}

/**
 * Parses CIDR blocks (`10.0.0.0/8`, `192.168.1.7`, `fd00::/8`, `::1`, `::ffff:10.0.0.0/104`).
 * Host bits set below the prefix are ignored, as in most firewalls. Throws UsageError naming `flag`
 * and the value for anything else.
 */
export function parseAllowList(specs: readonly string[], flag = "--allow"): AllowList {
  const blocks: Block[] = specs.map((spec) => {
    const [addressText, prefixText, extra] = spec.trim().split("/");
    const address = addressText === undefined ? undefined : parseAddress(addressText);
    if (address === undefined || extra !== undefined) throw new UsageError(`${flag} ${JSON.stringify(spec)}: not an IPv4 or IPv6 address or CIDR block (e.g. 10.0.0.0/8, fd00::/8)`);
    const mappedSpec = address.v6 === false && addressText !== undefined && addressText.includes(":");
    const bits = address.v6 ? 128 : 32;
    const given = mappedSpec ? 128 : bits;
    let prefix = given;
    if (prefixText !== undefined) {
      if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > given) throw new UsageError(`${flag} ${JSON.stringify(spec)}: the prefix length must be 0 to ${given}`);
      prefix = Number(prefixText);
    }
    // A mapped block (::ffff:10.0.0.0/104) is the IPv4 block 10.0.0.0/8.
    if (mappedSpec) {
      if (prefix < 96) throw new UsageError(`${flag} ${JSON.stringify(spec)}: an IPv4-mapped block needs a prefix of 96 or more`);
      prefix -= 96;
    }
    const shift = BigInt(bits - prefix);
    return { v6: address.v6, network: (address.value >> shift) << shift, prefix };
  });
  return {
    blocks: specs,
    allows(text) {
      if (text === undefined) return false;
      const address = parseAddress(text);
      if (address === undefined) return false;
      const bits = address.v6 ? 128 : 32;
      return blocks.some((b) => {
        if (b.v6 !== address.v6) return false;
        const shift = BigInt(bits - b.prefix);
        return (address.value >> shift) << shift === b.network;
      });
    },
  };
}
