/**
 * Rotation by age: a periodic check, on the injected clock, that runs once at start and then every
 * interval. The next check is scheduled only when the previous one has finished, so checks never
 * overlap however slow the store is; timers never keep the process alive (Clock's contract).
 */
import type { Clock } from '../store/clock.js';

/** Whether a generation created at `createdAt` (ISO 8601) has reached `maxAgeMs` at `now`. */
export function isDue(createdAt: string, maxAgeMs: number | null, now: number): boolean {
  if (maxAgeMs === null) return false;
  const created = Date.parse(createdAt);
  // An unparsable time cannot be aged; the store validated it, so this is a record from elsewhere.
  return Number.isFinite(created) && now - created >= maxAgeMs;
}

export class PeriodicCheck {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  /** Must not reject: the caller logs its own failures. */
  readonly #check: (now: number) => Promise<void>;
  #cancel: (() => void) | null = null;
  #stopped = false;

  constructor(clock: Clock, intervalMs: number, check: (now: number) => Promise<void>) {
    this.#clock = clock;
    this.#intervalMs = intervalMs;
    this.#check = check;
  }

  /** The first check runs as soon as the clock lets it (delay 0). Starting twice changes nothing. */
  start(): void {
    if (this.#cancel === null && !this.#stopped) this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
    this.#cancel = null;
  }

  #schedule(ms: number): void {
    this.#cancel = this.#clock.schedule(() => {
      // The time the timer fired for, read before any await, is the time the check judges ages by.
      void this.#check(this.#clock.now()).then(() => {
        if (!this.#stopped) this.#schedule(this.#intervalMs);
      });
    }, ms);
  }
}
