/**
 * A Clock the test moves by hand. advance() fires every timer that falls due, in order, with `now`
 * set to the timer's own time while it runs; the work a timer starts goes on asynchronously, and a
 * test that needs it finished awaits nextSchedule() (the periodic check schedules its next run when
 * it is done) or the event the work ends with.
 */
import type { Clock } from '../../../../src/broker/store/clock.js';

interface Timer {
  readonly at: number;
  readonly fn: () => void;
}

export class TestClock implements Clock {
  #now: number;
  readonly #timers = new Set<Timer>();
  #waiters: (() => void)[] = [];

  constructor(start: number) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  schedule(fn: () => void, ms: number): () => void {
    const timer = { at: this.#now + ms, fn };
    this.#timers.add(timer);
    for (const wake of this.#waiters.splice(0)) wake();
    return () => this.#timers.delete(timer);
  }

  /** Resolves at the next schedule() call. */
  nextSchedule(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Delays of the pending timers from now, soonest first. */
  get pending(): number[] {
    return [...this.#timers].map((t) => t.at - this.#now).sort((a, b) => a - b);
  }

  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = [...this.#timers].filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers.delete(due);
      this.#now = due.at;
      due.fn();
    }
    this.#now = end;
  }
}
