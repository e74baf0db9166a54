// The config file's schema: the single source for validation, defaults and the shipped JSON Schema.
import { z } from "zod";
import { TAG_KEYS } from "../core/manifest.js";

// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const tagValue = z.string().min(1).max(128).regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, "must not contain control characters");

const tagSet = z
  .object(Object.fromEntries(TAG_KEYS.map((key) => [key, tagValue.optional()])) as Record<(typeof TAG_KEYS)[number], z.ZodOptional<typeof tagValue>>)
  .strict()
  .refine((tags) => Object.keys(tags).length > 0, "must set at least one tag");

export const tagRuleSchema = z
  .object({
    match: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).describe("Glob or globs matched against the file's relative path"),
    set: tagSet.describe("Tags given to matching files; later rules override earlier ones per tag"),
  })
  .strict();

export const configSchema = z
  .object({
    $schema: z.string().optional(),
    tags: z.array(tagRuleSchema).default([]).describe("Tag rules applied by `index` (and by later verbs to folders without a manifest)"),
  })
  .strict();

export type Config = z.output<typeof configSchema>;

/** The JSON Schema shipped in config/ (file text), generated from configSchema so the two never disagree. */
export function renderConfigJsonSchema(): string {
  const schema = z.toJSONSchema(configSchema, { io: "input" });
  return `${JSON.stringify({ ...schema, title: "update-mirror configuration" }, null, 2)}\n`;
}
