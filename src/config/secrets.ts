// Secrets by reference: values come from an environment variable or a file, never from flags or config text.
import { readFile } from "node:fs/promises";
import { ConfigError, fsError } from "../core/errors.js";

/** Where a secret comes from; at most one of the two. */
export interface SecretRef {
  env?: string | undefined;
  file?: string | undefined;
}

/** Keys whose values are secrets wherever they appear; feeds log redaction. */
export const SECRET_KEYS = ["password", "passphrase", "token", "secret", "authorization", "proxyAuthorization", "cookie"] as const;

/**
 * Resolves a secret reference. Returns undefined when neither source is set. Throws ConfigError naming
 * `setting` and the variable or file (never the value) when the variable is unset or empty, or the file
 * unreadable or empty. One trailing newline of a file is dropped.
 */
export async function resolveSecret(ref: SecretRef, setting: string): Promise<string | undefined> {
  if (ref.env !== undefined && ref.file !== undefined) {
    throw new ConfigError(`${setting}: give either an environment variable or a file, not both`);
  }
  if (ref.env !== undefined) {
    const value = process.env[ref.env];
    if (value === undefined || value === "") throw new ConfigError(`${setting}: environment variable ${ref.env} is not set or empty`);
    return value;
  }
  if (ref.file !== undefined) {
    let value: string;
    try {
      value = await readFile(ref.file, "utf8");
    } catch (err) {
      throw new ConfigError(`${setting}: ${fsError(err, `secret file ${ref.file}`).message}`, [], { cause: err });
    }
    value = value.replace(/\r?\n$/, "");
    if (value === "") throw new ConfigError(`${setting}: secret file ${ref.file} is empty`);
    return value;
  }
  return undefined;
}
