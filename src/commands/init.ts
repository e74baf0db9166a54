// `init`: writes an annotated config file to start from (config/init.jsonc), never over an existing one.
import { constants } from "node:fs";
import { chmod, copyFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { Argv, CommandModule } from "yargs";
import { createRuntime, type GlobalArgs } from "../cli/runtime.js";
import { defaultConfigPath } from "../config/paths.js";
import { fsError, UsageError } from "../core/errors.js";

/** The annotated example shipped with the package; a test keeps it valid. */
const INIT_TEMPLATE = fileURLToPath(new URL("../../config/init.jsonc", import.meta.url));

interface InitArgs extends GlobalArgs {
  config?: string | undefined;
}

export const initCommand: CommandModule<GlobalArgs, InitArgs> = {
  command: "init",
  describe: "Write an annotated config file to start from (jobs, network, logging)",
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .option("config", { type: "string", describe: "Where to write it (default $UPDATE_MIRROR_CONFIG or /etc/update-mirror/config.json)" })
      .example("$0 init", "write /etc/update-mirror/config.json")
      .example("$0 init --config ./update-mirror.json", "somewhere else"),
  handler: async (args) => {
    const rt = createRuntime(args);
    const target = args.config ?? defaultConfigPath();
    try {
      await mkdir(dirname(target), { recursive: true });
      // COPYFILE_EXCL: an existing config is someone's work; it is never replaced.
      await copyFile(INIT_TEMPLATE, target, constants.COPYFILE_EXCL);
      // It will name secrets files and keys: not for every local user to read.
      await chmod(target, 0o640);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new UsageError(`${target} exists already; it was left as it is (move it away to start afresh)`);
      throw fsError(err, target);
    }
    rt.print(`wrote ${target}: edit the jobs, then \`update-mirror run JOB --config ${target}\` or \`update-mirror daemon --config ${target}\``);
  },
};
