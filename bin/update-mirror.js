#!/usr/bin/env node
// Command entry point: loads the compiled CLI (built by `npm run build`, run on `npm ci` via prepare).
// The heap setting comes first and the CLI is imported only then: a static import would parse the
// whole CLI (and grow the young generation) before the setting is made.
import { pinYoungGeneration } from "../dist/cli/young-generation.js";

pinYoungGeneration(process.execArgv, process.env.NODE_OPTIONS);
await import("../dist/cli/main.js");
