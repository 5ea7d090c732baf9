/** Resolves on the first of the given signals; the listeners are removed afterwards. */
export function waitForSignal(
  signals: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"],
): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handlers = signals.map((signal) => {
      const handler = () => {
        for (const [s, h] of handlers) process.removeListener(s, h);
        resolve(signal);
      };
      process.on(signal, handler);
      return [signal, handler] as const;
    });
  });
}
