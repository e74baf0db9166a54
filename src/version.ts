// The tool's name and version, read once from package.json (two levels up from both src/ and dist/).
import { readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

export const VERSION: string = pkg.version;
export const GENERATOR = `update-mirror/${VERSION}`;
