// Config loading: read -> parse -> validate into a Config, or a ConfigError listing `dot.path: message` lines.
import { access, readFile } from "node:fs/promises";
import { ConfigError, fsError } from "../core/errors.js";
import { defaultConfig } from "./defaults.js";
import { defaultConfigPath } from "./paths.js";
import { type Config, configSchema } from "./schema.js";

/** Validates an already-parsed document; `source` names it in errors. Throws ConfigError. */
export function validateConfig(doc: unknown, source: string): Config {
  const result = configSchema.safeParse(doc);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");
    // A bad record key (a job's name) carries the key schema's own message one level down.
    const inner = issue.code === "invalid_key" ? issue.issues[0]?.message : undefined;
    return `${path || "(top level)"}: ${inner ?? issue.message}`;
  });
  throw new ConfigError(`${source}: invalid config`, problems);
}

/**
 * The text with line (`//`) and block comments blanked out (strings left alone), so an admin may annotate
 * the file as `init` does; line and column numbers in parse errors stay right.
 */
export function withoutComments(text: string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === "/" && text[i + 1] === "/") {
      const end = text.indexOf("\n", i);
      const stop = end < 0 ? text.length : end;
      out += " ".repeat(stop - i);
      i = stop;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else {
      out += c;
      i += 1;
    }
  }
  return out;
}

/**
 * The config for a command that may use one: `file` when given; else the default path when a file is
 * there (`required`: or a ConfigError saying where it looked); else the defaults.
 */
export async function loadConfigOrDefault(file: string | undefined, required: boolean): Promise<{ config: Config; file: string | undefined }> {
  if (file !== undefined) return { config: await loadConfigFile(file), file };
  const fallback = defaultConfigPath();
  try {
    await access(fallback);
  } catch {
    if (required) throw new ConfigError(`no config file: give --config FILE (or set UPDATE_MIRROR_CONFIG); ${fallback} does not exist (\`update-mirror init\` writes one)`);
    return { config: defaultConfig(), file: undefined };
  }
  return { config: await loadConfigFile(fallback), file: fallback };
}

/** Reads a JSON config file (comments allowed). Throws ConfigError naming the file (unreadable, not JSON, invalid). */
export async function loadConfigFile(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${fsError(err, "cannot read").message}`, [], { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(withoutComments(text));
  } catch (err) {
    throw new ConfigError(`config file ${file}: not valid JSON (${(err as Error).message})`, [], { cause: err });
  }
  return validateConfig(doc, `config file ${file}`);
}

export { defaultConfig } from "./defaults.js";
