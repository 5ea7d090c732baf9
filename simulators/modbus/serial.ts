/**
 * Serves Modbus RTU on a serial device or pty (socat pty pairs work). The `serialport` package
 * (native bindings) is loaded only when a serial path is given. The port is opened raw, 8 data
 * bits, no parity, 1 stop bit, at the given baud rate.
 */
import { Link, type LinkContext } from "./link.ts";

export interface SerialServer {
  /** The link that serves the port (for unsolicited frames). */
  readonly link: Link;
  close(): Promise<void>;
}

export async function openSerialServer(
  ctx: LinkContext,
  path: string,
  baudRate: number,
): Promise<SerialServer> {
  const { SerialPort } = await import("serialport");
  const port = new SerialPort({ path, baudRate, autoOpen: false });
  await new Promise<void>((resolve, reject) => {
    port.open((err) => {
      if (err) reject(new Error(`cannot open serial port ${path}: ${err.message}`, { cause: err }));
      else resolve();
    });
  });
  const link = new Link(ctx, "serial", {
    write: (bytes) => {
      port.write(bytes);
    },
    destroy: () => {},
  });
  port.on("data", (chunk: Buffer) => link.receive(chunk));
  // A pty whose other end went away reports errors; the simulator keeps serving TCP.
  port.on("error", () => {});
  let closing: Promise<void> | undefined;
  return {
    link,
    close() {
      closing ??= new Promise<void>((resolve) => {
        link.close();
        if (!port.isOpen) {
          resolve();
          return;
        }
        port.close(() => resolve());
      });
      return closing;
    },
  };
}
