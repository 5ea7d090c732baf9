/** The environment the config fixtures are validated with; the values must never leak. */
export const FIXTURE_ENV: Record<string, string> = {
  PLC2MQTT_TEST_HOST: "broker.local",
  PLC2MQTT_TEST_USER: "operator-7",
  MQTT_PASSWORD: "s3cret-from-env",
};

/** Every resolved value a message must not contain (the env values and the secret files). */
export const FIXTURE_SECRETS = [...Object.values(FIXTURE_ENV), "pw-from-file"];

export const FIXTURE_DIR = new URL("../fixtures/config/", import.meta.url).pathname;
