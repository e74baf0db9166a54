// Where the config file is looked for when no --config is given.

/** `UPDATE_MIRROR_CONFIG`, else /etc/update-mirror/config.json (on Windows, %ProgramData%\update-mirror\config.json). */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.UPDATE_MIRROR_CONFIG) return env.UPDATE_MIRROR_CONFIG;
  if (platform === "win32") return `${env.ProgramData ?? "C:\\ProgramData"}\\update-mirror\\config.json`;
  return "/etc/update-mirror/config.json";
}

/** How the commands that read a config describe their --config flag. */
export const CONFIG_FLAG_HELP = "Config file (default $UPDATE_MIRROR_CONFIG or /etc/update-mirror/config.json)";
