// `keygen`: create the Ed25519 key pair that signs manifests (secret .key, minisign-format .pub).
import type { Argv, CommandModule } from "yargs";
import { writeKeyPair } from "../crypto/keys.js";
import { createRuntime, type GlobalArgs } from "../cli/runtime.js";
import { type PassphraseArgs, readPassphrase, withPassphraseOptions } from "../cli/passphrase.js";

interface KeygenArgs extends GlobalArgs, PassphraseArgs {
  out: string;
  force: boolean;
  json: boolean;
}

export const keygenCommand: CommandModule<GlobalArgs, KeygenArgs> = {
  command: "keygen",
  describe: "Create a signing key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (minisign format)",
  builder: (yargs: Argv<GlobalArgs>) =>
    withPassphraseOptions(yargs)
      .option("out", { type: "string", demandOption: true, describe: "Path prefix of the two files, e.g. ./keys/mirror" })
      .option("force", { type: "boolean", default: false, describe: "Overwrite existing key files" })
      .option("json", { type: "boolean", default: false, describe: "Print the result as JSON" })
      .example("$0 keygen --out ./keys/mirror", "write keys/mirror.key and keys/mirror.pub")
      .example("KEYPASS=... $0 keygen --out ./keys/mirror --passphrase-env KEYPASS", "encrypt the secret key with a passphrase"),
  handler: async (args) => {
    const rt = createRuntime(args);
    const passphrase = await readPassphrase(args);
    const result = await writeKeyPair(args.out, passphrase === undefined ? { force: args.force } : { force: args.force, passphrase });
    rt.logger.info({ event: "keygen", keyId: result.keyId, publicKey: result.publicPath, encrypted: passphrase !== undefined }, "key pair written");
    if (args.json) rt.print(JSON.stringify({ ...result, encrypted: passphrase !== undefined }));
    else {
      rt.print(`secret key: ${result.secretPath} (mode 0600${passphrase === undefined ? ", not encrypted" : ", encrypted"}; keep it off the mirror)`);
      rt.print(`public key: ${result.publicPath} (key ID ${result.keyId}; give it to everyone who verifies)`);
    }
  },
};
