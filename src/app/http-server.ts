/**
 * The service's HTTP face (node:http, no framework): GET /healthz and GET /metrics, nothing
 * else. It binds only where `http.listen` says (127.0.0.1:8787 by default, so it is not on the
 * plant network unless asked); port 0 picks a free port, and `address` tells which.
 *
 * - GET|HEAD /healthz: 200 with the health summary (JSON) while healthy, 503 with the same
 *   summary and its reasons otherwise (see health.ts).
 * - GET|HEAD /metrics: the Prometheus text exposition (see metrics.ts).
 * - Any other path: 404; any other method: 405 with Allow. Query strings are ignored.
 * - A handler that throws answers 500 and is logged; it never takes the gateway down.
 * - close() stops listening and drops open connections (keep-alive clients included), so the
 *   gateway's stop is never held up by a scraper.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { GatewayError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import type { HealthSummary } from "./health.ts";

export interface HttpServerOptions {
  /** host:port, as in `http.listen`. */
  listen: string;
  log: Logger;
  health: () => HealthSummary;
  metrics: () => Promise<{ contentType: string; body: string }>;
}

export interface HttpServer {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: { host: string; port: number };
  /** http://host:port */
  readonly url: string;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const cut = listen.lastIndexOf(":");
  return { host: listen.slice(0, cut), port: Number(listen.slice(cut + 1)) };
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { log } = options;
  const { host, port } = parseListen(options.listen);
  const server = createServer((req, res) => {
    handle(options, req, res).catch((err: unknown) => {
      log.error({ err, url: req.url }, "HTTP handler failed");
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end("internal error\n");
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      reject(
        new GatewayError(
          "HTTP_LISTEN",
          `cannot listen on ${options.listen} for /healthz and /metrics (http.listen)`,
          { cause: err, details: { listen: options.listen } },
        ),
      );
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.removeListener("error", onError);
      resolve();
    });
  });
  server.on("error", (err) => log.error({ err }, "HTTP server error"));
  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  const shown = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
  let closing: Promise<void> | undefined;
  return {
    address,
    url: `http://${shown}:${bound.port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(
  options: HttpServerOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  if (path !== "/healthz" && path !== "/metrics") {
    send(res, 404, "text/plain; charset=utf-8", "not found: try /healthz or /metrics\n");
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    send(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
    return;
  }
  const head = req.method === "HEAD";
  if (path === "/healthz") {
    const summary = options.health();
    const body = `${JSON.stringify(summary)}\n`;
    send(res, summary.status === "unhealthy" ? 503 : 200, "application/json", body, head);
    return;
  }
  const { contentType, body } = await options.metrics();
  send(res, 200, contentType, body, head);
}

function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  head = false,
): void {
  res.writeHead(status, {
    "content-type": contentType,
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(head ? undefined : body);
}
