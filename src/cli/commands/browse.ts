/**
 * `plc2mqtt browse opc.tcp://host:port`: walks an OPC UA server and writes a ready-to-edit
 * gateway YAML (one device, one tag per variable) to stdout or -o file, as it goes. Secure by
 * default (SignAndEncrypt, best policy offered); the server certificate must be trusted in the
 * PKI folder, exactly as for the gateway. The PKI (issue 13, point 7): with -c gateway.yaml the
 * gateway's own (`<data_dir>/pki`, so a server is trusted once for both); else --pki-dir; else
 * a user-level folder (user-data-dir.ts), never the working directory. A server that offers
 * nothing of the security asked for gets the flags that would work (--security None for a
 * None-only server). The password comes from an environment variable (--password-env), never
 * from the command line.
 */
import { createWriteStream } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import { browseToYaml } from "../../drivers/opcua/browse.ts";
import { pkiDirOf } from "../../drivers/opcua/pki.ts";
import { alternative, type SecurityMode } from "../../drivers/opcua/security.ts";
import { GatewayError, isGatewayError } from "../../lib/errors.ts";
import { createLogger } from "../../lib/logger.ts";
import { userBrowsePki } from "../user-data-dir.ts";

interface BrowseFlags {
  root?: string;
  depth: string;
  filter?: string;
  security: string;
  policy: string;
  config?: string;
  pkiDir?: string;
  dataDir?: string;
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

/** The PKI, the data_dir written into the YAML and the config named in hints. */
async function target(
  flags: BrowseFlags,
): Promise<{ pkiDir: string; dataDir: string; configPath?: string }> {
  if (flags.config === undefined) {
    return {
      pkiDir: resolve(flags.pkiDir ?? userBrowsePki()),
      dataDir: flags.dataDir ?? "/var/lib/plc2mqtt",
    };
  }
  const { config } = await loadConfig(flags.config, process.env);
  const dataDir = resolve(config.gateway.data_dir);
  return {
    pkiDir: flags.pkiDir === undefined ? pkiDirOf(dataDir) : resolve(flags.pkiDir),
    dataDir: flags.dataDir ?? dataDir,
    configPath: flags.config,
  };
}

/** A security refusal, with the flags that would work against what the server offers. */
function withSuggestion(err: unknown, wanted: SecurityMode): unknown {
  if (!isGatewayError(err, "OPCUA_SECURITY")) return err;
  const offered = err.details?.offered as Parameters<typeof alternative>[0] | undefined;
  const alt = offered === undefined ? undefined : alternative(offered, { mode: wanted });
  if (alt === undefined) return err;
  const flags =
    alt.mode === "None"
      ? "--security None (traffic neither signed nor encrypted: only on a network you trust)"
      : `--security ${alt.mode} --policy ${alt.policy}`;
  return new GatewayError("OPCUA_SECURITY", `${err.message}. Browse it with ${flags}`, {
    ...(err.details === undefined ? {} : { details: err.details }),
  });
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
    .option(
      "-c, --config <file>",
      "a gateway config: browse with its PKI (<data_dir>/pki) and write its data_dir",
    )
    .option(
      "--pki-dir <dir>",
      "PKI folder (default: the config's <data_dir>/pki, else $XDG_DATA_HOME/plc2mqtt/pki or ~/.local/share/plc2mqtt/pki)",
    )
    .option(
      "--data-dir <dir>",
      "data_dir written into the YAML (default: the config's, else /var/lib/plc2mqtt)",
    )
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
      const where = await target(flags);
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
          pkiDir: where.pkiDir,
          dataDir: where.dataDir,
          ...(where.configPath === undefined ? {} : { configPath: where.configPath }),
          deviceId: flags.device,
          log,
          signal: controller.signal,
          write: out.write,
        });
        process.stderr.write(
          `browsed ${summary.folders} nodes, wrote ${summary.variables} tags${flags.output ? ` to ${flags.output}` : ""}\n`,
        );
      } catch (err) {
        throw withSuggestion(err, flags.security as SecurityMode);
      } finally {
        await out.end();
        process.removeListener("SIGINT", onSignal);
      }
    });
}
