#!/usr/bin/env node
// Command entry point: loads the compiled CLI (built by `npm run build`, run on `npm ci` via prepare).
import "../dist/cli/main.js";
