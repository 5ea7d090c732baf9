/**
 * An in-process MQTT broker (aedes) on a free local port, for the demo only: so that a new
 * user sees events without installing a broker. Production gateways publish to the site's
 * broker (mosquitto, EMQX, HiveMQ).
 */
import { createServer, type Server } from "node:net";
import { Aedes } from "aedes";

export interface EmbeddedBroker {
  url: string;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(host = "127.0.0.1"): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const server: Server = createServer((socket) => {
    socket.setNoDelay(true);
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `mqtt://${host}:${port}`,
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
