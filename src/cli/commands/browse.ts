/**
 * `plc2mqtt browse opc.tcp://host:port`: walks an OPC UA server and writes a ready-to-edit
 * gateway YAML (one device, one tag per variable) to stdout or -o file, as it goes. Secure by
 * default (SignAndEncrypt, best policy offered); the server certificate must be trusted in the
 * PKI folder (--pki-dir, default ./pki), exactly as for the gateway. The password comes from
 * an environment variable (--password-env), never from the command line.
 */
import { createWriteStream } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { browseToYaml } from "../../drivers/opcua/browse.ts";
import { GatewayError } from "../../lib/errors.ts";
import { createLogger } from "../../lib/logger.ts";

interface BrowseFlags {
  root?: string;
  depth: string;
  filter?: string;
  security: string;
  policy: string;
  pkiDir: string;
  dataDir: string;
  device: string;
  user?: string;
  passwordEnv?: string;
  output?: string;
  logLevel: string;
}

function writer(file: string | undefined) {
  if (file === undefined) {
    return {
      write: (text: string) =>
        new Promise<void>((res, rej) =>
          process.stdout.write(text, (err) => (err ? rej(err) : res())),
        ),
      end: async () => {},
    };
  }
  const stream = createWriteStream(file);
  return {
    write: (text: string) =>
      new Promise<void>((res, rej) => stream.write(text, (err) => (err ? rej(err) : res()))),
    end: () => new Promise<void>((res) => stream.end(() => res())),
  };
}

export function registerBrowse(program: Command): void {
  program
    .command("browse")
    .description("walk an OPC UA server and write a YAML tag map (one tag per variable)")
    .argument("<endpoint>", "server endpoint, opc.tcp://host:port (opcua://host:port also works)")
    .option("--root <path>", "browse path (/2:Plant/2:Line1) or node id to start from")
    .option("--depth <n>", "how many levels deep", "10")
    .option("--filter <glob>", "only variables whose path below the root matches (Line1/*)")
    .option("--security <mode>", "None, Sign or SignAndEncrypt", "SignAndEncrypt")
    .option("--policy <policy>", "security policy, or auto (the best offered)", "auto")
    .option("--pki-dir <dir>", "PKI folder (trusted/, rejected/, own certificate)", "./pki")
    .option("--data-dir <dir>", "data_dir written into the YAML", "/var/lib/plc2mqtt")
    .option("--device <id>", "device id written into the YAML", "opcua-1")
    .option("--user <name>", "log in with this user name")
    .option("--password-env <var>", "environment variable holding the password")
    .option("-o, --output <file>", "write the YAML here instead of stdout")
    .option("--log-level <level>", "log level on stderr", "warn")
    .action(async (given: string, flags: BrowseFlags) => {
      // PRODUCT.md writes the scheme as opcua://; the protocol's own is opc.tcp://: take both
      const endpoint = given.replace(/^opcua:\/\//, "opc.tcp://");
      if (!/^opc\.tcp:\/\/\S+$/.test(endpoint)) {
        throw new GatewayError("USAGE", `expected opc.tcp://host:port, got ${endpoint}`);
      }
      const depth = Number(flags.depth);
      if (!Number.isInteger(depth) || depth < 1 || depth > 100) {
        throw new GatewayError("USAGE", "--depth must be a whole number from 1 to 100");
      }
      if (!["None", "Sign", "SignAndEncrypt"].includes(flags.security)) {
        throw new GatewayError("USAGE", "--security must be None, Sign or SignAndEncrypt");
      }
      let auth: Parameters<typeof browseToYaml>[0]["auth"] = { type: "anonymous" };
      if (flags.user !== undefined) {
        const password = flags.passwordEnv ? process.env[flags.passwordEnv] : undefined;
        if (password === undefined) {
          throw new GatewayError("USAGE", "--user needs --password-env naming a set variable");
        }
        auth = { type: "username", username: flags.user, password };
      }
      const log = createLogger({
        level: flags.logLevel,
        ...(auth?.type === "username" ? { secrets: new Set([auth.password]) } : {}),
      });
      const controller = new AbortController();
      const onSignal = () => controller.abort(new Error("interrupted"));
      process.once("SIGINT", onSignal);
      const out = writer(flags.output);
      try {
        const summary = await browseToYaml({
          endpoint,
          ...(flags.root === undefined ? {} : { root: flags.root }),
          depth,
          ...(flags.filter === undefined ? {} : { filter: flags.filter }),
          security: {
            mode: flags.security as "None" | "Sign" | "SignAndEncrypt",
            policy: flags.policy,
          },
          auth,
          ...(flags.passwordEnv === undefined ? {} : { passwordEnv: flags.passwordEnv }),
          pkiDir: resolve(flags.pkiDir),
          dataDir: flags.dataDir,
          deviceId: flags.device,
          log,
          signal: controller.signal,
          write: out.write,
        });
        process.stderr.write(
          `browsed ${summary.folders} nodes, wrote ${summary.variables} tags${flags.output ? ` to ${flags.output}` : ""}\n`,
        );
      } finally {
        await out.end();
        process.removeListener("SIGINT", onSignal);
      }
    });
}
