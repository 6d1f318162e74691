/**
 * The wait of a drain rotation: until no guest holds a VF of the PF, the deadline passes, or the
 * broker shuts down — whichever comes first. Lease changes arrive as `recheck()` calls (the broker
 * calls Rotator.leasesChanged() after every ReleaseGuest; the periodic check covers pending leases
 * that expire without an event).
 */
import type { Clock } from '../store/clock.js';

export type DrainOutcome = 'drained' | 'deadline' | 'closed';

export interface DrainWait {
  readonly outcome: Promise<DrainOutcome>;
  /** Re-reads the leases; ends the wait when none is left. */
  recheck(): void;
  /** Ends the wait without applying anything (broker shutdown). */
  close(): void;
}

export function waitForDrain(isDrained: () => boolean, deadline: number, clock: Clock): DrainWait {
  let finish: (outcome: DrainOutcome) => void = () => undefined;
  const outcome = new Promise<DrainOutcome>((resolve) => {
    let cancelDeadline: () => void = () => undefined;
    let over = false;
    finish = (o) => {
      if (over) return;
      over = true;
      cancelDeadline();
      resolve(o);
    };
    cancelDeadline = clock.schedule(() => finish('deadline'), Math.max(0, deadline - clock.now()));
  });
  return {
    outcome,
    recheck: () => {
      if (isDrained()) finish('drained');
    },
    close: () => finish('closed'),
  };
}
