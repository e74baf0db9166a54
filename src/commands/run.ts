// `run JOB`: runs one named job of the config file (its command, then its hooks), as `daemon` does on a schedule.
import type { Argv, CommandModule } from "yargs";
import { createRuntime, type GlobalArgs, stopSignal } from "../cli/runtime.js";
import { CONFIG_FLAG_HELP } from "../config/paths.js";

interface RunArgs extends GlobalArgs {
  name: string;
  config?: string | undefined;
  scheduled: boolean;
  "dry-run": boolean;
  json: boolean;
  verbose: boolean;
}

export const runCommand: CommandModule<GlobalArgs, RunArgs> = {
  command: "run <name>",
  describe: "Run one job of the config file now: its sync, export, import or pull, then its hooks",
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .positional("name", { type: "string", demandOption: true, describe: "The job's name in the config's `jobs`" })
      .option("config", { type: "string", describe: CONFIG_FLAG_HELP })
      .option("scheduled", { type: "boolean", default: false, describe: "A scheduled run (cron, timer): wait the job's randomDelay first" })
      .option("dry-run", { type: "boolean", default: false, describe: "Print what the job would change, change nothing, run no hook" })
      .option("json", { type: "boolean", default: false, describe: "NDJSON events on stdout (the job's, then job:done)" })
      .option("verbose", { alias: "v", type: "boolean", default: false, describe: "A line per file" })
      .example("$0 run nightly-sync", "run a job now")
      .example("$0 run nightly-sync --scheduled", "from a cron line or timer: with the job's random delay"),
  handler: async (args) => {
    const [{ loadConfigOrDefault }, { runJob }, { jobLogging }, { createReporter }, { jobNamed }] = await Promise.all([
      import("../config/load.js"),
      import("../jobs/run-job.js"),
      import("../jobs/logging.js"),
      import("../cli/reporters/reporter.js"),
      import("../jobs/argv.js"),
    ]);
    const { config, file } = await loadConfigOrDefault(args.config, true);
    const job = jobNamed(config, args.name, file);
    const logging = jobLogging(args, config);
    const rt = createRuntime(logging.args);
    // The child logs the job's events itself; this reporter only shows them.
    const emit = args.json ? undefined : createReporter({ json: false, verbose: args.verbose, logger: rt.logger.child({}, { level: "silent" }) });
    const outcome = await runJob({
      name: args.name,
      job,
      configFile: file,
      logArgs: logging.childArgs,
      logger: rt.logger,
      scheduled: args.scheduled,
      dryRun: args["dry-run"],
      signal: stopSignal(),
      onEvent: (event) => (emit ? emit(event) : rt.print(JSON.stringify(event))),
      onStderr: (line) => process.stderr.write(`${line}\n`),
    });
    if (args.json) rt.print(JSON.stringify({ type: "job:done", job: outcome.name, result: outcome.result, exitCode: outcome.exitCode, error: outcome.error ?? null, hooks: outcome.hooks }));
    else {
      if (outcome.error !== undefined) process.stderr.write(`update-mirror: job ${args.name}: ${outcome.error}\n`);
      for (const h of outcome.hooks) if (!h.ok) process.stderr.write(`update-mirror: job ${args.name}: ${h.hook} hook ${h.ended} (the job ended ${outcome.result})\n`);
    }
    process.exitCode = outcome.exitCode;
  },
};
