// Keeps V8's young generation at its starting size in job processes; the entry point pins it before it loads the CLI.
import { setFlagsFromString } from "node:v8";

let pinned = false;

/**
 * V8 doubles the young generation each time many objects survive a scavenge, up to 2 x 16 MB, and
 * does not give it back while the program allocates steadily. Parsing a manifest of 40,000 entries
 * grows it to the maximum within the first second, and a sync allocates steadily until it ends, so
 * those 32 MB stay, and with them the socket buffers that larger scavenge intervals keep alive.
 * Pinned at its starting size (1 MB semispaces), a 40,000-file full sync peaks at ~135 MB RSS
 * instead of ~188 MB, for about 1 s more CPU in scavenges (bench/sync.ts).
 *
 * The growth factor is read each time V8 considers growing, so setting it at run time takes effect
 * (the size flags are read only at start-up). Whoever sizes the young generation on the command line
 * or in NODE_OPTIONS (`--max-semi-space-size`, `--min-semi-space-size`) keeps their choice: returns
 * false and changes nothing then.
 */
export function pinYoungGeneration(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const sized = (flag: string) => /semi[-_]space/.test(flag);
  if (execArgv.some(sized) || sized(nodeOptions ?? "")) return false;
  setFlagsFromString("--semi-space-growth-factor=1");
  pinned = true;
  return true;
}

/**
 * Lets the young generation grow again as V8 would (growth factor 2, its default), when pinYoungGeneration
 * pinned it. For `serve`, which answers many small requests for hours and is limited by throughput,
 * not memory: pinned, all six of bench/serve.ts's figures were lower (small files 15,100 requests/s
 * against 17,500-19,100; released, 16,800).
 */
export function releaseYoungGeneration(): void {
  if (!pinned) return;
  setFlagsFromString("--semi-space-growth-factor=2");
  pinned = false;
}
