// Config loading: read -> parse -> validate into a Config, or a ConfigError listing `dot.path: message` lines.
import { readFile } from "node:fs/promises";
import { ConfigError, fsError } from "../core/errors.js";
import { type Config, configSchema } from "./schema.js";

/** Validates an already-parsed document; `source` names it in errors. Throws ConfigError. */
export function validateConfig(doc: unknown, source: string): Config {
  const result = configSchema.safeParse(doc);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");
    return `${path || "(top level)"}: ${issue.message}`;
  });
  throw new ConfigError(`${source}: invalid config`, problems);
}

/** Reads a JSON config file. Throws ConfigError naming the file (unreadable, not JSON, invalid). */
export async function loadConfigFile(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${fsError(err, "cannot read").message}`, [], { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file}: not valid JSON (${(err as Error).message})`, [], { cause: err });
  }
  return validateConfig(doc, `config file ${file}`);
}

export { defaultConfig } from "./defaults.js";
