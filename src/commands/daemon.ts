// `daemon`: runs every scheduled job of the config until stopped; SIGTERM/SIGINT stop it cleanly, SIGHUP reloads the config.
import type { Argv, CommandModule } from "yargs";
import { createRuntime, type GlobalArgs } from "../cli/runtime.js";
import { CONFIG_FLAG_HELP } from "../config/paths.js";
import { UsageError } from "../core/errors.js";

interface DaemonArgs extends GlobalArgs {
  config?: string | undefined;
}

export const daemonCommand: CommandModule<GlobalArgs, DaemonArgs> = {
  command: "daemon",
  describe: "Run every job that has a schedule, on its schedule, until stopped (SIGHUP reloads the config)",
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .option("config", { type: "string", describe: CONFIG_FLAG_HELP })
      .example("$0 daemon", "as a service (see dist-templates/)"),
  handler: async (args) => {
    const [{ loadConfigOrDefault }, { startScheduler }, { jobLogging }, { openTarget }, { jobTarget }] = await Promise.all([
      import("../config/load.js"),
      import("../jobs/scheduler.js"),
      import("../jobs/logging.js"),
      import("./target-store.js"),
      import("../jobs/argv.js"),
    ]);
    const loaded = await loadConfigOrDefault(args.config, true);
    const scheduled = Object.entries(loaded.config.jobs).filter(([, job]) => job.schedule !== undefined);
    if (scheduled.length === 0) throw new UsageError(`${loaded.file}: no job has a "schedule"; the daemon would have nothing to do (run jobs by hand with \`update-mirror run JOB\`)`);
    const logging = jobLogging(args, loaded.config);
    const rt = createRuntime(logging.args);
    let config = loaded.config;
    const scheduler = startScheduler({
      config,
      configFile: loaded.file,
      logArgs: logging.childArgs,
      logger: rt.logger,
      readHistory: async (_name, job) => {
        const target = jobTarget(job);
        const { store } = await openTarget(target.path, config, target.kind);
        try {
          return await store.readHistory();
        } finally {
          await store.close?.();
        }
      },
    });
    const reload = async () => {
      try {
        const next = await loadConfigOrDefault(args.config, true);
        config = next.config;
        scheduler.reload(next.config, next.file);
        rt.logger.info({ config: next.file }, "daemon:reloaded");
      } catch (err) {
        // A broken edit must not stop the jobs that were running fine.
        rt.logger.error({ err }, "daemon:reload failed; keeping the previous config");
        process.stderr.write(`update-mirror daemon: reload failed, keeping the previous config: ${(err as Error).message}\n`);
      }
    };
    // Every handler is in place before the daemon says it is up: a SIGHUP that came first would kill it.
    process.on("SIGHUP", () => void reload());
    const stopped = new Promise<NodeJS.Signals>((resolve) => {
      process.once("SIGTERM", () => resolve("SIGTERM"));
      process.once("SIGINT", () => resolve("SIGINT"));
    });
    rt.logger.info({ config: loaded.file, pid: process.pid }, "daemon:start");
    for (const { job, next } of scheduler.nextRuns()) process.stderr.write(`update-mirror daemon: ${job} next runs at ${next?.toISOString() ?? "never"}\n`);
    const signal = await stopped;
    rt.logger.info({ signal }, "daemon:stopping");
    process.stderr.write(`update-mirror daemon: ${signal}: stopping; a job under way finishes its files first\n`);
    await scheduler.stop();
    rt.logger.info({}, "daemon:stopped");
  },
};
