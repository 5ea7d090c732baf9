/**
 * File and folder paths in a config are relative to the config file's folder, not to wherever
 * the daemon happens to start (systemd starts it in /): data_dir, the MQTT TLS files and the
 * OPC UA user certificate files. Absolute paths are left as they are.
 */
import { isAbsolute, resolve } from "node:path";
import type { GatewayConfig } from "./schema/root.ts";

export function anchorPaths(config: GatewayConfig, baseDir: string): GatewayConfig {
  const at = (path: string) => (isAbsolute(path) ? path : resolve(baseDir, path));
  const mqtt = config.mqtt;
  return {
    ...config,
    gateway: { ...config.gateway, data_dir: at(config.gateway.data_dir) },
    ...(mqtt === undefined
      ? {}
      : {
          mqtt: {
            ...mqtt,
            ...(mqtt.ca === undefined ? {} : { ca: at(mqtt.ca) }),
            ...(mqtt.cert === undefined ? {} : { cert: at(mqtt.cert) }),
            ...(mqtt.key === undefined ? {} : { key: at(mqtt.key) }),
          },
        }),
    devices: config.devices.map((device) =>
      device.protocol === "opcua" && device.auth.type === "certificate"
        ? {
            ...device,
            auth: { ...device.auth, cert: at(device.auth.cert), key: at(device.auth.key) },
          }
        : device,
    ),
  };
}
