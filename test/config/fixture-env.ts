import { writeFileSync } from "node:fs";
import { join } from "node:path";

/** The environment the config fixtures are validated with; the values must never leak. */
export const FIXTURE_ENV: Record<string, string> = {
  PLC2MQTT_TEST_HOST: "broker.local",
  PLC2MQTT_TEST_USER: "operator-7",
  MQTT_PASSWORD: "s3cret-from-env",
};

/** Every resolved value a message must not contain (the env values and the secret files). */
export const FIXTURE_SECRETS = [...Object.values(FIXTURE_ENV), "pw-from-file"];

export const FIXTURE_DIR = new URL("../fixtures/config/", import.meta.url).pathname;

/**
 * An example config's text with every ${file:} pointed at a file made in `dir`, and an env
 * setting every ${env:}: what `validate` needs to pass on the shipped examples.
 */
export function withReferencesSatisfied(
  text: string,
  dir: string,
): { text: string; env: Record<string, string> } {
  const env: Record<string, string> = {};
  let count = 0;
  const replaced = text.replace(/\$\{(env|file):([^}]*)\}/g, (ref, kind: string, arg: string) => {
    if (kind === "env") {
      env[arg] = "example";
      return ref;
    }
    const file = join(dir, `ref-${count++}`);
    writeFileSync(file, "example\n");
    return `\${file:${file}}`;
  });
  return { text: replaced, env };
}
