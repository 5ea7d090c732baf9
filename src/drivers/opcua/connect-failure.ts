/**
 * What a failed OPC UA connect means, in one line an operator can act on (issue 13, points 1
 * and 7). Pure: works on the error node-opcua threw and on files of the PKI, no node-opcua.
 *
 * - node-opcua words every failure of a secure channel as "The connection may have been
 *   rejected by server,\n Err = (<the real cause>)", a timeout of a hung server too. The real
 *   cause is taken out of it and said plainly, on one line: a timeout names request_timeout, a
 *   refused TCP connect says nothing listens, a closed socket says the server closed it.
 * - The GatewayError built from it carries, as its cause, the real cause alone on one line (the
 *   original stack kept): a log line shows `message: cause` and so never repeats the same text,
 *   and a device.status event (the message) never carries a newline.
 * - A server that refuses a Sign or SignAndEncrypt channel, by closing the connection right
 *   after the open request (open62541) or by answering it with BadSecurityChecksFailed or a
 *   BadCertificate status (node-opcua, the specification), most likely does not trust the
 *   gateway's certificate: the error says so, names that certificate's file, SHA-1 thumbprint
 *   and application URI, and the step on the server's side. The discovery channel (None) has
 *   just worked at that point, so the server is reachable and speaks OPC UA.
 */
import { errorMessage, GatewayError, oneLine } from "../../lib/errors.ts";
import { ownCertificate } from "./pki.ts";

export interface ConnectFailure {
  /** The cause in plain words, one line. */
  text: string;
  /** The server closed the connection (or reset it) instead of answering. */
  closed: boolean;
  /** The status the server answered the OpenSecureChannel with, if it did. */
  status: string | undefined;
  /** node-opcua's own text of the real cause, one line. */
  raw: string;
}

/** node-opcua's real cause: the part inside "Err = (...)", without the transport's name. */
function rawCause(message: string): string {
  const at = message.indexOf("Err = (");
  const inner = at < 0 ? message : message.slice(at + 7).replace(/\)\s*$/, "");
  return oneLine(inner.replace(/^ClientTCP_transport\d*:\s*/, ""));
}

/** Reads a connect error of node-opcua's OPCUAClient.connect(). */
export function connectFailure(err: unknown, endpoint: string): ConnectFailure {
  const message = errorMessage(err);
  const raw = rawCause(message);
  const status = /rejected by server: (Bad[A-Za-z]+)/.exec(message)?.[1];
  if (status !== undefined) {
    return { text: `the server refused the secure channel: ${status}`, closed: false, status, raw };
  }
  const where = /^opc\.tcp:\/\/([^/]+)/.exec(endpoint)?.[1] ?? endpoint;
  const timeout = /timeout was = (\d+) ?ms/i.exec(raw);
  const text = timeout
    ? `no answer within ${timeout[1]} ms (request_timeout): the server accepts the connection but does not respond (hung or overloaded)`
    : /ECONNREFUSED/.test(raw)
      ? `connection refused: nothing listens at ${where}`
      : /ENOTFOUND|EAI_AGAIN/.test(raw)
        ? `host name not found: ${where}`
        : /EHOSTUNREACH|ENETUNREACH/.test(raw)
          ? `host unreachable: ${where}`
          : /ETIMEDOUT/.test(raw)
            ? `TCP connect to ${where} timed out (no route, or a firewall drops the packets)`
            : undefined;
  if (text !== undefined) return { text, closed: false, status: undefined, raw };
  if (/disconnected by third party|ECONNRESET|EPIPE|premature|socket has been closed/i.test(raw)) {
    return { text: "the server closed the connection", closed: true, status: undefined, raw };
  }
  return { text: raw, closed: false, status: undefined, raw };
}

/** The real cause alone, on one line, with the original stack: the cause of our errors. */
export function causeOf(err: unknown, failure: ConnectFailure): Error {
  const cause = new Error(failure.raw);
  if (err instanceof Error && err.stack !== undefined) cause.stack = err.stack;
  return cause;
}

/** A refusal of a secure channel that most likely means: the server does not trust us. */
export function refusedOurCertificate(failure: ConnectFailure): boolean {
  if (failure.closed) return true;
  const s = failure.status;
  return s !== undefined && (s === "BadSecurityChecksFailed" || s.startsWith("BadCertificate"));
}

export interface RefusalContext {
  endpoint: string;
  mode: string;
  policy: string;
  pkiDir: string;
  configPath?: string;
}

/** The command that writes a copy of the gateway's certificate for the server. */
export function exportCommand(pkiDir: string, configPath?: string): string {
  const target = configPath === undefined ? `--pki-dir ${pkiDir}` : `-c ${configPath}`;
  return `plc2mqtt pki export ${target} --der -o plc2mqtt.der`;
}

/** OPCUA_CHANNEL_REFUSED: the server most likely does not trust the gateway's certificate. */
export function channelRefusedError(
  c: RefusalContext,
  failure: ConnectFailure,
  err: unknown,
): GatewayError {
  const own = ownCertificate(c.pkiDir);
  const what = failure.closed
    ? "closed the connection right after the open request"
    : `answered the open request with ${failure.status}`;
  const timeInvalid = failure.status === "BadCertificateTimeInvalid";
  const certificate = own
    ? `plc2mqtt's certificate ${own.file} (SHA-1 thumbprint ${own.thumbprint}, application URI ${own.applicationUri ?? "none"})`
    : "plc2mqtt's certificate (not created yet)";
  const verdict = timeInvalid
    ? `it finds ${certificate} outside its validity period: check the clocks of both machines`
    : `most likely it does not trust ${certificate}. On the server's side, trust it: copy it into the server's trusted certificates folder, or accept it in the server's UI (often listed as rejected); ${exportCommand(c.pkiDir, c.configPath)} writes a copy`;
  return new GatewayError(
    "OPCUA_CHANNEL_REFUSED",
    `${c.endpoint} refused the ${c.mode}/${c.policy} channel (it ${what}): ${verdict}`,
    {
      cause: causeOf(err, failure),
      details: {
        ...(own
          ? { file: own.file, thumbprint: own.thumbprint, application_uri: own.applicationUri }
          : {}),
      },
    },
  );
}
