/**
 * A Clock the test drives: time moves only when the test says, together with the Vault test server's
 * clock, so renewal is tested without sleeping. Running a timer starts asynchronous work (a renewal
 * request); the session always ends that work by scheduling its next timer, so advance() waits for
 * that before running the next one.
 */
import type { Clock } from '../../../src/broker/store/clock.js';

interface Timer {
  readonly at: number;
  readonly fn: () => void;
}

/** Real time allowed for the work one timer starts (a few loopback HTTP requests). */
const SETTLE_LIMIT_MS = 5000;

export class ManualClock implements Clock {
  #now = Date.UTC(2030, 0, 1);
  #timers = new Set<Timer>();
  #scheduled: (() => void) | null = null;

  now(): number {
    return this.#now;
  }

  schedule(fn: () => void, ms: number): () => void {
    const timer = { at: this.#now + ms, fn };
    this.#timers.add(timer);
    this.#scheduled?.();
    return () => this.#timers.delete(timer);
  }

  /** Delays of the pending timers from now, in ms, soonest first. */
  get pending(): number[] {
    return [...this.#timers].map((t) => t.at - this.#now).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, running every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      const due = [...this.#timers].filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers.delete(due);
      this.#now = due.at;
      await this.#runAndSettle(due.fn);
    }
    this.#now = end;
  }

  async #runAndSettle(fn: () => void): Promise<void> {
    let limit: NodeJS.Timeout | undefined;
    const settled = new Promise<void>((resolve, reject) => {
      this.#scheduled = resolve;
      limit = setTimeout(
        () => reject(new Error('the timer work did not schedule a next timer')),
        SETTLE_LIMIT_MS,
      );
    });
    try {
      fn();
      await settled;
    } finally {
      clearTimeout(limit);
      this.#scheduled = null;
    }
  }
}
