/**
 * Semantic checks across the devices that passed the schema, even when other parts of the
 * file failed: device ids unique in the gateway, then each protocol's own checks. Pure;
 * paths are absolute config paths (`devices[2].tags[0].address`).
 */
import { type CheckIssue, checkModbusDevice } from "./check-modbus.ts";
import type { DeviceConfig } from "./schema/root.ts";

export interface CheckedDevice {
  /** Position in the `devices` list. */
  index: number;
  device: DeviceConfig;
  /** The keys the YAML gave (the rest are defaults). */
  given: ReadonlySet<string>;
  /** Where each of `device.tags` sits in the YAML's tag list (failing tags may be left out). */
  tagIndex: readonly number[];
}

export function checkDevices(devices: readonly CheckedDevice[]): CheckIssue[] {
  const issues: CheckIssue[] = [];
  const firstById = new Map<string, number>();
  for (const { index, device, given, tagIndex } of devices) {
    const first = firstById.get(device.id);
    if (first !== undefined) {
      issues.push({
        path: ["devices", index, "id"],
        message: `device id "${device.id}" is already used by devices[${first}]`,
      });
    } else {
      firstById.set(device.id, index);
    }
    for (const issue of checkModbusDevice(device, { given, tagIndex }))
      issues.push({ path: ["devices", index, ...issue.path], message: issue.message });
  }
  return issues;
}
