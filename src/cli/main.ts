// CLI entry: yargs commands, and the one error boundary that prints failures and picks the exit code.
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { daemonCommand } from "../commands/daemon.js";
import { exportCommand } from "../commands/export.js";
import { historyCommand } from "../commands/history.js";
import { importCommand } from "../commands/import.js";
import { indexCommand } from "../commands/index-command.js";
import { initCommand } from "../commands/init.js";
import { keygenCommand } from "../commands/keygen.js";
import { pullCommand } from "../commands/pull.js";
import { runCommand } from "../commands/run.js";
import { rollbackCommand } from "../commands/rollback.js";
import { serveCommand } from "../commands/serve.js";
import { statusCommand } from "../commands/status.js";
import { syncCommand } from "../commands/sync.js";
import { verifyCommand } from "../commands/verify.js";
import { UpdateMirrorError, UsageError } from "../core/errors.js";
import { VERSION } from "../version.js";
import { EXIT, exitCodeFor } from "./exit-codes.js";
import { withGlobalOptions } from "./runtime.js";

/** Runs the CLI on `argv` and returns the exit code; never throws. */
export async function runCli(argv: string[]): Promise<number> {
  const parser = withGlobalOptions(yargs(argv))
    .scriptName("update-mirror")
    .command(initCommand)
    .command(keygenCommand)
    .command(indexCommand)
    .command(verifyCommand)
    .command(syncCommand)
    .command(rollbackCommand)
    .command(exportCommand)
    .command(importCommand)
    .command(serveCommand)
    .command(pullCommand)
    .command(statusCommand)
    .command(historyCommand)
    .command(runCommand)
    .command(daemonCommand)
    .demandCommand(1, "Give a command; see --help")
    .recommendCommands()
    .strict()
    .version(VERSION)
    .help()
    .alias("h", "help")
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .epilogue("Exit codes: see README.md. Docs: docs/manifest.md, docs/architecture.md.")
    .fail((message, err) => {
      throw err ?? new UsageError(`${message} (see --help)`);
    });
  try {
    await parser.parseAsync();
    // A command whose outcome is not an error may still pick its code (status: the Nagios convention).
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof UpdateMirrorError) {
      process.stderr.write(`update-mirror: ${err.message}\n`);
      return exitCodeFor(err.code);
    }
    // yargs reports its own validation failures (from .check) as plain Errors.
    if (err instanceof Error && err.name === "YError") {
      process.stderr.write(`update-mirror: ${err.message} (see --help)\n`);
      return EXIT.usage;
    }
    process.stderr.write(`update-mirror: internal error (a bug; please report it with this output):\n${err instanceof Error ? err.stack : String(err)}\n`);
    return EXIT.internal;
  }
}

// A reader that went away (`| head`) is not an error of ours: stop writing and exit quietly.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(EXIT.ok);
});
const code = await runCli(hideBin(process.argv));
process.exitCode = code;
// Let stdout drain and handles close on their own; if something lingers, still exit with the right code.
setTimeout(() => process.exit(code), 2_000).unref();
