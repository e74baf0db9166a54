// `serve`: the HTTP(S) update server endpoints fetch from, answering from the mirror's committed manifest until SIGTERM.
import type { Logger } from "pino";
import type { Argv, CommandModule } from "yargs";
import { KeyError, UsageError } from "../core/errors.js";
import { parseDuration } from "../core/duration.js";
import { createRuntime, type GlobalArgs, type Runtime } from "../cli/runtime.js";
import { releaseYoungGeneration } from "../cli/young-generation.js";
import type { AllowList } from "../serve/allow-list.js";
import type { Authenticator } from "../serve/auth.js";
import { byteSizeSetting } from "../core/size.js";

interface ServeArgs extends GlobalArgs {
  dir?: string | undefined;
  host: string;
  port: number;
  "tls-cert"?: string | undefined;
  "tls-key"?: string | undefined;
  allow?: string[] | undefined;
  "auth-file"?: string | undefined;
  listing: boolean;
  "max-age"?: string | undefined;
  "max-connections": number;
  "headers-timeout": string;
  "keepalive-timeout": string;
  "shutdown-timeout": string;
  "cache-size": string;
  workers: number;
  "hash-password"?: string | undefined;
  "password-env"?: string | undefined;
  "password-file"?: string | undefined;
}


function wholeNumber(name: string, min: number, max: number) {
  return (value: number): number => {
    if (!Number.isInteger(value) || value < min || value > max) throw new UsageError(`--${name}: must be a whole number from ${min} to ${max}, got ${value}`);
    return value;
  };
}

/** Reads a password for --hash-password: from the flag's secret reference, a hidden prompt on a terminal, or stdin. */
async function readNewPassword(args: ServeArgs): Promise<string> {
  const { resolveSecret } = await import("../config/secrets.js");
  const referenced = await resolveSecret({ env: args["password-env"], file: args["password-file"] }, "--hash-password");
  if (referenced !== undefined) return referenced;
  if (process.stdin.isTTY) {
    const first = await promptHidden("New password: ");
    const again = await promptHidden("Repeat it: ");
    if (first !== again) throw new UsageError("--hash-password: the two passwords differ");
    if (first === "") throw new UsageError("--hash-password: the password is empty");
    return first;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
  if (text === "") throw new UsageError("--hash-password: no password on standard input (pipe one in, or use --password-env/--password-file)");
  return text;
}

function promptHidden(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.setEncoding("utf8");
  stdin.resume();
  return new Promise((resolve, reject) => {
    let text = "";
    const finish = (result: () => void) => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      result();
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") return finish(() => resolve(text));
        if (ch === "\u0003" || ch === "\u0004") return finish(() => reject(new UsageError("--hash-password: cancelled")));
        if (ch === "\u007f" || ch === "\b") text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on("data", onData);
  });
}

async function hashPasswordLine(args: ServeArgs, rt: Runtime): Promise<void> {
  const user = args["hash-password"] ?? "";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (user === "" || /[:\u0000-\u001f\u007f]/.test(user)) throw new UsageError("--hash-password: give a user name without ':' or control characters");
  const { hashPassword } = await import("../serve/auth.js");
  rt.print(`${user}:${await hashPassword(await readNewPassword(args))}`);
}

async function readTls(args: ServeArgs): Promise<{ cert: Buffer; key: Buffer } | undefined> {
  const certFile = args["tls-cert"];
  const keyFile = args["tls-key"];
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) throw new UsageError("--tls-cert and --tls-key go together: give both or neither");
  const [{ readFile }, { createSecureContext }, { fsError }] = await Promise.all([import("node:fs/promises"), import("node:tls"), import("../core/errors.js")]);
  const read = (file: string, flag: string) =>
    readFile(file).catch((err: unknown) => {
      throw new KeyError(`${flag} ${fsError(err, file).message}`, { cause: err });
    });
  const tls = { cert: await read(certFile, "--tls-cert"), key: await read(keyFile, "--tls-key") };
  try {
    createSecureContext(tls);
  } catch (err) {
    throw new KeyError(`--tls-cert ${certFile} / --tls-key ${keyFile}: not a usable PEM certificate and matching key (${(err as Error).message})`, { cause: err });
  }
  return tls;
}

async function readAuth(file: string | undefined) {
  if (file === undefined) return undefined;
  const [{ readFile }, { parseAuthFile, createAuthenticator }, { ConfigError, fsError }] = await Promise.all([import("node:fs/promises"), import("../serve/auth.js"), import("../core/errors.js")]);
  const text = await readFile(file, "utf8").catch((err: unknown) => {
    throw new ConfigError(`--auth-file ${fsError(err, file).message}`, [], { cause: err });
  });
  return createAuthenticator(parseAuthFile(text, `--auth-file ${file}`));
}

export const serveCommand: CommandModule<GlobalArgs, ServeArgs> = {
  command: "serve [dir]",
  describe: "Serve a mirror over HTTP(S) from its committed manifest: files, ranges, listings, by-hash, health and metrics",
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .positional("dir", { type: "string", describe: "The mirror root" })
      // info, not the global warn: the access log (one line per request) is part of what a server is for.
      .default("log-level", "info" as const)
      .option("host", { type: "string", default: "127.0.0.1", describe: "Address to listen on (0.0.0.0 or :: for every interface)" })
      .option("port", { type: "number", default: 8080, coerce: wholeNumber("port", 0, 65535), describe: "TCP port (0 picks a free one)" })
      .option("tls-cert", { type: "string", describe: "PEM certificate (chain) for HTTPS; reloaded on SIGHUP" })
      .option("tls-key", { type: "string", describe: "PEM private key for HTTPS" })
      .option("allow", { type: "string", array: true, describe: "Only clients in this CIDR block (repeatable): 10.0.0.0/8, fd00::/8" })
      .option("auth-file", { type: "string", describe: "Require HTTP Basic auth; lines user:scrypt$... from --hash-password; reloaded on SIGHUP" })
      .option("listing", { type: "boolean", default: true, describe: "Folder listings (HTML, and JSON with ?format=json); --no-listing answers 404" })
      .option("max-age", { type: "string", describe: "healthz turns 503 once the manifest is older than this, e.g. 2d" })
      .option("max-connections", { type: "number", default: 4096, coerce: wholeNumber("max-connections", 1, 1_000_000), describe: "Client connections at once; more are dropped" })
      .option("headers-timeout", { type: "string", default: "20s", describe: "Longest a client may take to send request headers" })
      .option("keepalive-timeout", { type: "string", default: "15s", describe: "How long an idle keep-alive connection stays open" })
      .option("shutdown-timeout", { type: "string", default: "10s", describe: "On SIGTERM/SIGINT, how long responses in flight may take to finish" })
      .option("workers", { type: "number", default: 1, coerce: wholeNumber("workers", 1, 64), describe: "Server processes sharing the port, one per core for the most small files per second" })
      .option("cache-size", { type: "string", default: "64M", describe: "Memory for small files (up to 64 KiB each); 0 turns the cache off" })
      .option("hash-password", { type: "string", describe: "Print an auth-file line for this user (password from --password-env/--password-file, a prompt, or stdin) and exit" })
      .option("password-env", { type: "string", describe: "With --hash-password: environment variable holding the password" })
      .option("password-file", { type: "string", describe: "With --hash-password: file holding the password" })
      .conflicts("password-env", "password-file")
      .example("$0 serve /srv/mirror --port 8080", "on 127.0.0.1:8080")
      .example("$0 serve /srv/mirror --host 0.0.0.0 --port 8443 --tls-cert c.pem --tls-key k.pem --allow 10.0.0.0/8", "HTTPS for one network")
      .example("$0 serve --hash-password alice >> /etc/update-mirror/users", "add a user for --auth-file"),
  handler: async (args) => {
    releaseYoungGeneration();
    const rt = createRuntime(args);
    if (args["hash-password"] !== undefined) return hashPasswordLine(args, rt);
    if (args.dir === undefined) throw new UsageError("give the mirror folder to serve (update-mirror serve DIR)");
    // Flags are checked before anything is opened, so a typo never leaves a half-started server.
    const settings = {
      dir: args.dir,
      headersTimeoutMs: parseDuration(args["headers-timeout"], "--headers-timeout"),
      keepAliveTimeoutMs: parseDuration(args["keepalive-timeout"], "--keepalive-timeout"),
      shutdownTimeoutMs: parseDuration(args["shutdown-timeout"], "--shutdown-timeout"),
      maxAgeMs: args["max-age"] === undefined ? undefined : parseDuration(args["max-age"], "--max-age"),
      cacheBytes: byteSizeSetting(args["cache-size"], "--cache-size"),
    };
    const [{ parseAllowList }, { isWorker }] = await Promise.all([import("../serve/allow-list.js"), import("../serve/cluster.js")]);
    const allow = args.allow === undefined || args.allow.length === 0 ? undefined : parseAllowList(args.allow);
    const tls = await readTls(args);
    const auth = await readAuth(args["auth-file"]);
    const log = await createServeLogger(args, args.workers > 1);
    try {
      if (args.workers > 1 && !isWorker()) await runPrimary(args, rt, log.logger, settings.dir, settings.shutdownTimeoutMs);
      else await runServer(args, rt, log.logger, log.access, { ...settings, allow, tls, auth });
    } finally {
      log.flush();
    }
  },
};

type ServeLogger = Logger;

// POSIX's least PIPE_BUF, Linux's too: writes up to this size to a pipe are never split or interleaved.
const PIPE_BUF = 4096;

/**
 * The serve logger: pino JSON lines with secrets redacted, written asynchronously, so an access-log
 * line per request never stalls the event loop on a slow disk, and lines that pile up during one
 * write go out together in the next. When several processes share the destination, each write holds
 * whole lines and at most PIPE_BUF bytes (sonic-boom's maxWrite), which a pipe or an appending file
 * takes in one piece, so their lines never interleave mid-line (a line longer than that, as before).
 */
async function createServeLogger(args: ServeArgs, shared: boolean): Promise<{ logger: ServeLogger; access: ServeLogger; flush: () => void }> {
  const [{ pino }, { LOG_BASE, REDACT_PATHS }] = await Promise.all([import("pino"), import("../cli/logger.js")]);
  const destination = pino.destination({ dest: args["log-file"] ?? 2, sync: false, mkdir: true, append: true, ...(shared && { maxWrite: PIPE_BUF }) });
  const logger = pino({ level: args["log-level"], base: LOG_BASE, redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, destination);
  // Access records have a fixed shape that carries no secret (never a header, at most a user name),
  // and redaction's wildcard paths would cost more than the rest of a small response.
  const access = pino({ level: args["log-level"], base: LOG_BASE }, destination);
  return {
    logger,
    access,
    flush() {
      try {
        destination.flushSync();
      } catch {
        // Nothing left to write, or the destination is gone: nothing more to do.
      }
    },
  };
}

/** Resolves with the name of the first SIGTERM or SIGINT. `persistent` keeps later ones from killing the process (a worker is stopped by its primary). */
function nextStopSignal(persistent: boolean): { signal: Promise<string>; dispose: () => void } {
  let resolve: (name: string) => void = () => undefined;
  const signal = new Promise<string>((r) => {
    resolve = r;
  });
  const onTerm = () => resolve("SIGTERM");
  const onInt = () => resolve("SIGINT");
  if (persistent) {
    process.on("SIGTERM", onTerm);
    process.on("SIGINT", onInt);
  } else {
    process.once("SIGTERM", onTerm);
    process.once("SIGINT", onInt);
  }
  return {
    signal,
    dispose() {
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
    },
  };
}

interface ServerSettings {
  dir: string;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  shutdownTimeoutMs: number;
  maxAgeMs: number | undefined;
  cacheBytes: number;
  allow: AllowList | undefined;
  tls: { cert: Buffer; key: Buffer } | undefined;
  auth: Authenticator | undefined;
}

/** One server process: on its own, or as a worker of runPrimary. Returns once it has stopped. */
async function runServer(args: ServeArgs, rt: Runtime, logger: ServeLogger, accessLog: ServeLogger, settings: ServerSettings): Promise<void> {
  const [{ startServer, SERVE_DEFAULTS }, { isWorker, linkWorker }] = await Promise.all([import("../serve/server.js"), import("../serve/cluster.js")]);
  const worker = isWorker();
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  const link = worker
    ? linkWorker(
        () => (server as NonNullable<typeof server>).counters(),
        // Verdicts can arrive before this worker's server is up: it will hash those files itself.
        (identity, sha256) => server?.learnVerdict(identity, sha256),
      )
    : undefined;
  const stop = nextStopSignal(worker);
  try {
    server = await startServer({
      root: settings.dir,
      host: args.host,
      port: args.port,
      ...(settings.tls && { tls: settings.tls }),
      listing: args.listing,
      ...(settings.maxAgeMs !== undefined && { maxAgeMs: settings.maxAgeMs }),
      ...(settings.allow && { allow: settings.allow }),
      ...(settings.auth && { auth: settings.auth }),
      maxConnections: args["max-connections"],
      headersTimeoutMs: settings.headersTimeoutMs,
      requestTimeoutMs: Math.max(SERVE_DEFAULTS.requestTimeoutMs, settings.headersTimeoutMs),
      keepAliveTimeoutMs: settings.keepAliveTimeoutMs,
      idleTimeoutMs: SERVE_DEFAULTS.idleTimeoutMs,
      shutdownTimeoutMs: settings.shutdownTimeoutMs,
      cacheBytes: settings.cacheBytes,
      log: logger,
      ...(accessLog.isLevelEnabled("info") && { access: (record) => accessLog.info({ event: "http:request", ...record }) }),
      ...(link && { gatherCounters: (local) => link.gatherCounters(local), shareVerdict: (identity, sha256) => link.shareVerdict(identity, sha256) }),
    });
    const running = server;
    const reload = async () => {
      try {
        const [nextTls, nextAuth] = await Promise.all([readTls(args), readAuth(args["auth-file"])]);
        if (nextTls) running.setTls(nextTls);
        if (nextAuth) running.setAuth(nextAuth);
        logger.info({ event: "serve:reloaded" }, "certificate and auth file reloaded");
      } catch (err) {
        logger.error({ event: "serve:reload-failed", err: (err as Error).message }, "reload failed; keeping the previous certificate and users");
      }
    };
    const onHup = () => void reload();
    // In place before the server says it is up: a SIGHUP that came first would kill it.
    process.on("SIGHUP", onHup);
    const snapshot = server.live.current();
    if (link) link.announce({ url: server.url, version: snapshot.version, files: snapshot.files.size });
    else rt.print(`serving ${settings.dir} (version ${snapshot.version}, ${snapshot.files.size} files) at ${server.url}`);
    logger.info({ event: "serve:listening", url: server.url, root: settings.dir, tls: settings.tls !== undefined, auth: settings.auth !== undefined, allow: settings.allow?.blocks }, "listening");

    const why = await Promise.race([stop.signal, ...(link ? [link.stopRequested.then(() => "stop request")] : [])]);
    process.off("SIGHUP", onHup);
    logger.info({ event: "serve:stopping", signal: why }, "stopping: finishing responses in flight");
    await running.close();
    logger.info({ event: "serve:stopped" }, "stopped");
    if (!link) rt.print(`stopped (${why})`);
  } finally {
    stop.dispose();
    link?.close();
  }
}

/** The primary of --workers N: checks the mirror, forks the workers, relays SIGHUP, stops them on SIGTERM/SIGINT. */
async function runPrimary(args: ServeArgs, rt: Runtime, logger: ServeLogger, dir: string, shutdownTimeoutMs: number): Promise<void> {
  const [{ realpath }, { statManifest }, { startPrimary, WorkerStartError }, { fsError, IoError, NotFoundError }, { mirrorLayout }] = await Promise.all([
    import("node:fs/promises"),
    import("../serve/snapshot.js"),
    import("../serve/cluster.js"),
    import("../core/errors.js"),
    import("../mirror/layout.js"),
  ]);
  // Checked once here, so a folder that is not a mirror is reported once rather than by every worker.
  const root = await realpath(dir).catch((err: unknown) => {
    throw fsError(err, dir);
  });
  if ((await statManifest(root)) === undefined) throw new NotFoundError(`${root} is not a mirror: there is no committed manifest at ${mirrorLayout(root).manifest}`);
  const stop = nextStopSignal(false);
  const primary = startPrimary({ workers: args.workers, log: logger, stopTimeoutMs: shutdownTimeoutMs });
  try {
    const ready = await Promise.race([primary.ready, stop.signal.then(() => undefined)]);
    if (ready === undefined) {
      await primary.stop();
      return;
    }
    rt.print(`serving ${dir} (version ${ready.version}, ${ready.files} files, ${args.workers} processes) at ${ready.url}`);
    const onHup = () => primary.reload();
    process.on("SIGHUP", onHup);
    let why: string;
    try {
      why = await Promise.race([stop.signal, primary.failed]);
    } catch (err) {
      await primary.stop();
      throw new IoError((err as Error).message, { cause: err });
    } finally {
      process.off("SIGHUP", onHup);
    }
    logger.info({ event: "serve:stopping", signal: why, processes: args.workers }, "stopping: asking every server process to finish");
    await primary.stop();
    rt.print(`stopped (${why})`);
  } catch (err) {
    if (err instanceof WorkerStartError) throw err.exitCode === 2 ? new UsageError(err.message) : new IoError(err.message);
    throw err;
  } finally {
    stop.dispose();
  }
}
