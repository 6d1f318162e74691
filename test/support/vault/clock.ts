/**
 * The test server's own clock: wall time plus an offset that tests move forward. Token TTLs,
 * wrapping TTLs and every timestamp the server reports read this clock, so a test can expire a
 * token with advanceClock() instead of sleeping.
 */
export class Clock {
  #offsetMs = 0;

  nowMs(): number {
    return Date.now() + this.#offsetMs;
  }

  now(): Date {
    return new Date(this.nowMs());
  }

  advance(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new RangeError(`advanceClock: seconds must be a finite number >= 0, got ${seconds}`);
    }
    this.#offsetMs += seconds * 1000;
  }
}

/** Go's RFC 3339 form, as Vault prints timestamps (UTC, "Z"). */
export function rfc3339(date: Date): string {
  return date.toISOString();
}
