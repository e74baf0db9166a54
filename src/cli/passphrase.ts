// The --passphrase-env / --passphrase-file pair shared by commands that read or write a secret key.
import type { Argv } from "yargs";
import { resolveSecret } from "../config/secrets.js";

export interface PassphraseArgs {
  "passphrase-env"?: string | undefined;
  "passphrase-file"?: string | undefined;
}

export function withPassphraseOptions<T>(yargs: Argv<T>): Argv<T & PassphraseArgs> {
  return yargs
    .option("passphrase-env", { type: "string", describe: "Environment variable holding the secret key's passphrase" })
    .option("passphrase-file", { type: "string", describe: "File holding the secret key's passphrase" })
    .conflicts("passphrase-env", "passphrase-file");
}

/** The passphrase the flags point at, or undefined. Throws ConfigError naming the variable or file. */
export function readPassphrase(args: PassphraseArgs): Promise<string | undefined> {
  return resolveSecret({ env: args["passphrase-env"], file: args["passphrase-file"] }, "passphrase");
}
