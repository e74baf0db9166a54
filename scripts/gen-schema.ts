// Writes config/update-mirror.schema.json from the code's config schema (run: npm run schema).
import { writeFileSync } from "node:fs";
import { renderConfigJsonSchema } from "../src/config/schema.js";

writeFileSync(new URL("../config/update-mirror.schema.json", import.meta.url), renderConfigJsonSchema());
