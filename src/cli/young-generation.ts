// Keeps V8's young generation at its starting size; the entry point loads this before the CLI itself.
import { setFlagsFromString } from "node:v8";

/**
 * V8 doubles the young generation each time many objects survive a scavenge, up to 2 x 16 MB, and
 * does not give it back while the program allocates steadily. Parsing a manifest of 40,000 entries
 * grows it to the maximum within the first second, and a sync allocates steadily until it ends, so
 * those 32 MB stay, and with them the socket buffers that larger scavenge intervals keep alive.
 * Pinned at its starting size (1 MB semispaces), a 40,000-file full sync peaks at ~132 MB RSS
 * instead of ~188 MB, for about 1 s more CPU in scavenges (bench/sync.ts).
 *
 * The growth factor is read each time V8 considers growing, so setting it now takes effect (the
 * size flags are read only at start-up). Whoever sizes the young generation on the command line or in
 * NODE_OPTIONS (`--max-semi-space-size`, `--min-semi-space-size`) keeps their choice.
 */
export function pinYoungGeneration(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const sized = (flag: string) => /semi[-_]space/.test(flag);
  if (execArgv.some(sized) || sized(nodeOptions ?? "")) return false;
  setFlagsFromString("--semi-space-growth-factor=1");
  return true;
}

pinYoungGeneration(process.execArgv, process.env.NODE_OPTIONS);
