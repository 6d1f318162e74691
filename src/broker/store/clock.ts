/**
 * Time as the Vault session sees it. Renewal runs on timers measured in minutes or hours; tests swap
 * in a manual clock and advance it together with the Vault test server's clock, so they never sleep.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` after `ms`; the returned function cancels it. A pending timer never keeps the process alive. */
  schedule(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(fn, ms) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};
