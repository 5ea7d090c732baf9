/**
 * The demo's live view: one readable line per event, state transitions and triggers stand out.
 *
 *   12:04:01.250  #42  state      packaging-line/machine_state  stopped -> running  (12.0 s)
 */
export interface ViewOptions {
  color: boolean;
}

const CODES = { dim: 2, bold: 1, red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36 };
type Style = keyof typeof CODES;

interface CloudEventLike {
  type?: string;
  source?: string;
  subject?: string;
  time?: string;
  sequence?: string;
  data?: Record<string, unknown>;
}

function fmt(value: unknown): string {
  if (typeof value === "number")
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  return JSON.stringify(value);
}

export function formatEventLine(payload: string, options: ViewOptions): string | undefined {
  let event: CloudEventLike;
  try {
    event = JSON.parse(payload) as CloudEventLike;
  } catch {
    return undefined;
  }
  if (typeof event.type !== "string") return undefined;
  const paint = (style: Style, text: string) =>
    options.color ? `\x1b[${CODES[style]}m${text}\x1b[0m` : text;
  const data = event.data ?? {};
  const time = (event.time ?? "").slice(11, 23);
  const seq = event.sequence ? `#${BigInt(event.sequence)}` : "";
  const device = (event.source ?? "").split("/").at(-1) ?? "";
  // device and gateway status name themselves: one name is enough
  const what = event.subject === device ? device : `${device}/${event.subject ?? ""}`;
  let kind: string;
  let detail: string;
  switch (event.type) {
    case "plc2mqtt.telemetry":
      kind = paint("cyan", "telemetry".padEnd(9));
      detail = `${fmt(data.value)}${data.unit ? ` ${data.unit}` : ""}${data.reason === "change" ? "" : paint("dim", ` (${data.reason})`)}`;
      break;
    case "plc2mqtt.state.changed": {
      kind = paint("yellow", "state".padEnd(9));
      const took =
        typeof data.previous_duration_ms === "number"
          ? paint("dim", ` (${(data.previous_duration_ms / 1000).toFixed(1)} s)`)
          : "";
      detail = paint("bold", `${data.previous_state ?? "-"} -> ${data.state}`) + took;
      break;
    }
    case "plc2mqtt.alarm.changed":
      kind = paint("red", "alarm".padEnd(9));
      detail = data.active ? paint("red", "RAISED") : paint("green", "cleared");
      break;
    case "plc2mqtt.quality.changed":
      kind = paint("magenta", "quality".padEnd(9));
      detail = `${data.previous_quality ?? "-"} -> ${data.quality}${data.reason ? paint("dim", ` (${data.reason})`) : ""}`;
      break;
    case "plc2mqtt.device.status":
    case "plc2mqtt.gateway.status":
      kind = paint("blue", "status".padEnd(9));
      detail = `${data.status}${data.error ? paint("dim", ` (${data.error})`) : ""}`;
      break;
    default:
      kind = paint("green", "event".padEnd(9));
      detail = `${paint("bold", event.type)} ${fmt(data.snapshot ?? data.value)}`;
  }
  return `${paint("dim", time)}  ${paint("dim", seq.padEnd(6))} ${kind}  ${what}  ${detail}`;
}
