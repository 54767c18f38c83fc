// Polling for tests of things that become true "within" a bound (revocations, elections across servers).

/** Polls `check` until it stops throwing (every `everyMs`); resolves to how long that took, or throws its last error after `ms`. */
export async function within(ms: number, check: () => Promise<void>, everyMs = 20): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      await check();
      return Date.now() - started;
    } catch (error) {
      if (Date.now() - started > ms) throw error;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}
