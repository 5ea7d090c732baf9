/**
 * Where the CLI keeps a user's own OPC UA files when no gateway config names a data_dir: the
 * PKI of `browse` and of `simulate opcua` (issue 13, point 7). Always a user-level folder,
 * `$XDG_DATA_HOME/plc2mqtt` (an absolute XDG_DATA_HOME only, as the XDG spec says) or else
 * `~/.local/share/plc2mqtt`; never the working directory, where private keys would be left
 * lying around and the same server trusted once per folder.
 */
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import { GatewayError } from "../lib/errors.ts";

export function userDataDir(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  const xdg = env.XDG_DATA_HOME;
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, "plc2mqtt");
  if (home === "" || !isAbsolute(home)) {
    throw new GatewayError(
      "USAGE",
      "no home folder to keep the OPC UA certificates in: set XDG_DATA_HOME or give --pki-dir",
    );
  }
  return join(home, ".local", "share", "plc2mqtt");
}

/** The PKI of `plc2mqtt browse` without a gateway config. */
export const userBrowsePki = () => join(userDataDir(), "pki");

/** The certificate stores of `plc2mqtt simulate opcua` without --pki-dir. */
export const userSimulatorPki = () => join(userDataDir(), "opcua-simulator-pki");
