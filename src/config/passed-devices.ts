/**
 * The devices the semantic checks can look at, even in a file with schema errors: each
 * device that passes the schema as written, or else the part of it that does. A device with
 * failing options is re-parsed with those options left out (their defaults apply) and its
 * failing tags dropped; `tagIndex` maps the kept tags back to their places in the YAML. A
 * device whose required parts fail (protocol, id, host, the tags list itself) is skipped.
 * The schema issues themselves are reported by the caller; this only feeds the checks.
 */
import type { CheckedDevice } from "./check-devices.ts";
import { deviceSchema } from "./schema/root.ts";

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export function passedDevices(tree: unknown): CheckedDevice[] {
  const devices = isRecord(tree) && Array.isArray(tree.devices) ? tree.devices : [];
  const passed: CheckedDevice[] = [];
  for (const [index, raw] of devices.entries()) {
    if (!isRecord(raw)) continue;
    const checked = salvage(raw);
    if (checked !== undefined) passed.push({ index, ...checked });
  }
  return passed;
}

function salvage(raw: Record<string, unknown>): Omit<CheckedDevice, "index"> | undefined {
  const first = deviceSchema.safeParse(raw);
  const allTags = Array.isArray(raw.tags) ? raw.tags.map((_, i) => i) : [];
  // every tag name the YAML gives, so that a reference to a tag that failed is not "unknown"
  const tagNames = Array.isArray(raw.tags)
    ? raw.tags.flatMap((t) => (isRecord(t) && typeof t.name === "string" ? [t.name] : []))
    : [];
  if (first.success) {
    return { device: first.data, given: new Set(Object.keys(raw)), tagIndex: allTags, tagNames };
  }
  const badKeys = new Set<string>();
  const badTags = new Set<number>();
  for (const issue of first.error.issues) {
    const [key, tag] = issue.path;
    if (issue.code === "unrecognized_keys" && issue.path.length === 0) {
      for (const unknown of issue.keys) badKeys.add(unknown);
    } else if (key === "tags" && typeof tag === "number") badTags.add(tag);
    else if (typeof key === "string") badKeys.add(key);
    else return undefined; // the device as a whole is wrong
  }
  if (badKeys.has("tags") || badKeys.has("protocol")) return undefined;
  const pruned: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) if (!badKeys.has(key)) pruned[key] = value;
  const tagIndex = allTags.filter((i) => !badTags.has(i));
  pruned.tags = tagIndex.map((i) => (raw.tags as unknown[])[i]);
  if (tagIndex.length === 0) return undefined;
  const second = deviceSchema.safeParse(pruned);
  if (!second.success) return undefined;
  return { device: second.data, given: new Set(Object.keys(pruned)), tagIndex, tagNames };
}
