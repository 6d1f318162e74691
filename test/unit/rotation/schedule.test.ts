/**
 * The age rule and the periodic check's timing, on a hand-moved clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDue, PeriodicCheck } from '../../../src/broker/rotation/schedule.js';
import { waitForDrain } from '../../../src/broker/rotation/drain.js';
import { TestClock } from '../../integration/rotation/support/clock.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const HOUR = 3_600_000;

describe('isDue', () => {
  it('is due from the moment the age reaches maxAge', () => {
    assert.equal(isDue('2030-01-01T00:00:00.000Z', HOUR, T0 + HOUR - 1), false);
    assert.equal(isDue('2030-01-01T00:00:00.000Z', HOUR, T0 + HOUR), true);
  });

  it('is never due without a maxAge, or for a time it cannot read', () => {
    assert.equal(isDue('2030-01-01T00:00:00.000Z', null, T0 + 100 * HOUR), false);
    assert.equal(isDue('yesterday', HOUR, T0), false);
  });
});

describe('PeriodicCheck', () => {
  it('checks at start, then an interval after each check has finished, with the time it fired for', async () => {
    const clock = new TestClock(T0);
    const seen: number[] = [];
    let finish: () => void = () => undefined;
    const check = new PeriodicCheck(clock, 1000, (now) => {
      seen.push(now);
      return new Promise((resolve) => (finish = resolve));
    });
    check.start();
    check.start();
    assert.deepEqual(clock.pending, [0]);

    clock.advance(5000);
    assert.deepEqual(seen, [T0]);
    // Still running: nothing more is scheduled however far time moves.
    assert.deepEqual(clock.pending, []);
    const scheduled = clock.nextSchedule();
    finish();
    await scheduled;
    assert.deepEqual(clock.pending, [1000]);

    clock.advance(1000);
    assert.deepEqual(seen, [T0, T0 + 6000]);
    check.stop();
    finish();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(clock.pending, []);
  });
});

describe('waitForDrain', () => {
  it('ends when the leases are gone, at a recheck', async () => {
    const clock = new TestClock(T0);
    let leases = 2;
    const wait = waitForDrain(() => leases === 0, T0 + HOUR, clock);
    wait.recheck();
    leases = 0;
    wait.recheck();
    assert.equal(await wait.outcome, 'drained');
    assert.deepEqual(clock.pending, [], 'the deadline timer is cancelled');
  });

  it('ends at the deadline, not a millisecond before', async () => {
    const clock = new TestClock(T0);
    const wait = waitForDrain(() => false, T0 + HOUR, clock);
    let outcome: string | null = null;
    void wait.outcome.then((o) => (outcome = o));
    clock.advance(HOUR - 1);
    await Promise.resolve();
    assert.equal(outcome, null);
    clock.advance(1);
    assert.equal(await wait.outcome, 'deadline');
  });

  it('ends on close, and the first ending wins', async () => {
    const clock = new TestClock(T0);
    const wait = waitForDrain(() => true, T0 + HOUR, clock);
    wait.close();
    wait.recheck();
    clock.advance(HOUR);
    assert.equal(await wait.outcome, 'closed');
  });
});
