// The config file's schema: the single source for validation, defaults and the shipped JSON Schema.
import { z } from "zod";
import { TAG_KEYS } from "../core/manifest.js";
import { duration, envName, jobName, jobSchema, rate } from "./job-schema.js";

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


/** A secret given by reference: the name of an environment variable, or a file holding it. */
const secretRef = { passwordEnv: envName.optional(), passwordFile: z.string().min(1).optional() };

export const networkSchema = z
  .object({
    proxy: z
      .object({
        url: z.string().regex(/^https?:\/\/[^@/]+(:\d+)?\/?$/, "must be http://host:port without credentials (give username and passwordEnv/passwordFile)"),
        username: z.string().min(1).optional(),
        ...secretRef,
      })
      .strict()
      .optional()
      .describe("HTTP proxy; without it HTTP_PROXY/HTTPS_PROXY/NO_PROXY are honoured"),
    ftp: z.object(secretRef).strict().optional().describe("Password of the user named in ftp(s)://USER@host/ sources, by reference"),
    smb: z.object(secretRef).strict().optional().describe("Password of the user named in smb://[DOMAIN;]USER@host/share/ sources and destinations, by reference"),
    caFile: z.string().min(1).optional().describe("PEM file of extra CA certificates to trust (TLS verification is never turned off)"),
    userAgent: z.string().min(1).max(200).optional(),
    connectTimeout: duration.optional().describe("Connect timeout per source (default 10s)"),
    idleTimeout: duration.optional().describe("Longest silence in a transfer (default 60s)"),
    totalTimeout: duration.optional().describe("Longest a single request may take, body included (default 1h)"),
  })
  .strict();

export const syncSchema = z
  .object({
    sources: z.array(z.string().min(1)).min(1).optional().describe("Upstreams in priority order: http(s):// URLs, file:// URLs or folder paths"),
    dest: z.string().min(1).optional().describe("The mirror folder"),
    trust: z.array(z.string().min(1)).optional().describe("Public keys (minisign format); an upstream manifest must be signed by one of them"),
    signKey: z.string().min(1).optional().describe("Secret key that signs our manifest"),
    signKeyPassphraseEnv: envName.optional(),
    signKeyPassphraseFile: z.string().min(1).optional(),
    include: z.array(z.string().min(1)).optional(),
    exclude: z.array(z.string().min(1)).optional(),
    select: z.partialRecord(z.enum(TAG_KEYS), z.array(z.string().min(1)).min(1)).optional().describe("Only files whose tags have one of these values"),
    concurrency: z.number().int().min(1).max(64).optional(),
    retries: z.number().int().min(0).max(20).optional(),
    maxDelete: z.string().regex(/^(\d+|\d+(\.\d+)?%)$/, "must be a count (25) or a percentage (10%)").optional(),
    keepGenerations: z.number().int().min(0).max(100).optional(),
    expires: duration.optional().describe("Lifetime of our manifest"),
    bandwidth: rate.optional().describe("Cap on the transfer rate of the whole run"),
  })
  .strict();

export const configSchema = z
  .object({
    $schema: z.string().optional(),
    tags: z.array(tagRuleSchema).default([]).describe("Tag rules applied by `index` and by `sync` to folders without a manifest"),
    sync: syncSchema.default({}),
    network: networkSchema.default({}),
    jobs: z.record(jobName, jobSchema).default({}).describe("Named jobs for `run JOB` and `daemon`"),
    logging: z
      .object({
        file: z.string().min(1).optional().describe("JSON log lines go here (default: stderr)"),
        level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).optional().describe("Default warn for commands, info for run and daemon"),
        maxSize: z.union([z.string().regex(/^\d+(\.\d+)?[kKmMgG]?$/, "must be a size like 10M"), z.literal("off")]).optional().describe('Rotate the file at this size (default 10M); "off" leaves rotation to logrotate'),
        keep: z.number().int().min(1).max(1000).optional().describe("Rotated files kept (default 5)"),
        maxAge: duration.optional().describe("Rotated files older than this are deleted"),
      })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.output<typeof configSchema>;

/** The JSON Schema shipped in config/ (file text), generated from configSchema so the two never disagree. */
export function renderConfigJsonSchema(): string {
  const schema = z.toJSONSchema(configSchema, { io: "input" });
  return `${JSON.stringify({ ...schema, title: "update-mirror configuration" }, null, 2)}\n`;
}
