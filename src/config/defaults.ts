// The config used when no file is given, kept apart from the schema so a run without --config never loads zod.
import type { Config } from "./schema.js";

/** Every default: exactly what validating `{}` against the schema gives (a unit test keeps the two equal). */
export function defaultConfig(): Config {
  return { tags: [], sync: {}, network: {}, jobs: {}, logging: {} };
}
