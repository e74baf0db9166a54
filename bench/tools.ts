// Shared by the benches: find an executable on PATH, and install missing Debian packages with apt-get.
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import path from "node:path";

export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/** Installs missing Debian packages once; returns why it could not, or undefined on success. */
export function aptInstall(packages: readonly string[]): string | undefined {
  if (packages.length === 0) return undefined;
  if (!findExecutable("apt-get")) return "apt-get is not available";
  if (process.getuid?.() !== 0) return "not running as root, so apt-get cannot install";
  console.log(`installing ${packages.join(", ")} (apt-get)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update", "-qq"], ["install", "-y", "-qq", ...packages]]) {
    const res = spawnSync("apt-get", args, { env, encoding: "utf8", timeout: 5 * 60_000 });
    if (res.error) return `apt-get ${args[0]}: ${res.error.message}`;
    if (res.status !== 0) return `apt-get ${args[0]} exited with ${res.status}: ${(res.stderr || res.stdout).trim().split("\n").slice(-3).join(" / ")}`;
  }
  return undefined;
}
