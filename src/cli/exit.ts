import { errorMessage, isGatewayError } from "../lib/errors.ts";

/** 0 success, 1 the command's check or work failed, 2 usage, 3 unexpected internal error. */
export function exitCodeFor(err: unknown): number {
  if (!isGatewayError(err)) return 3;
  return err.code === "USAGE" ? 2 : 1;
}

export function printError(err: unknown): void {
  const code = isGatewayError(err) ? `${err.code}: ` : "";
  let message = `plc2mqtt: ${code}${errorMessage(err)}`;
  let cause = err instanceof Error ? err.cause : undefined;
  while (cause !== undefined) {
    message += `\n  caused by: ${errorMessage(cause)}`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  process.stderr.write(`${message}\n`);
}
