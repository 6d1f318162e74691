/**
 * Rotation by age: the periodic check rotates a PF whose active generation has reached the PF's
 * maxAge, at the first check after that and not before, and leaves PFs without a maxAge alone.
 * Time is the world's test clock; nothing sleeps.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { RotationWorld } from './support/world.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

let world: RotationWorld | undefined;
afterEach(async () => {
  await world?.dispose();
  world = undefined;
});

/** Fires the pending periodic check and waits until it has finished (it then schedules the next one). */
async function runCheck(w: RotationWorld, after: number): Promise<number> {
  const done = w.clock.nextSchedule();
  w.clock.advance(after);
  const firedAt = w.clock.now();
  await done;
  return firedAt;
}

describe('scheduled rotation', () => {
  it('rotates a token at the first check after it reaches maxAge, and only PFs that have one', async () => {
    const w = (world = await RotationWorld.start({ mode: 'live', pfCount: 2, maxAgeMs: [HOUR, null] }));
    const created = Date.parse((await w.backing.read(w.pf(0))).active.createdAt);

    await runCheck(w, 0);
    let firedAt = 0;
    while (w.events.rotated.length === 0) {
      assert.ok(
        w.clock.now() - created < HOUR + 2 * MINUTE,
        'the token outlived its maxAge by more than a check',
      );
      firedAt = await runCheck(w, MINUTE);
    }

    assert.ok(firedAt - created >= HOUR, `rotated at age ${firedAt - created} ms, before maxAge`);
    assert.ok(firedAt - MINUTE - created < HOUR, 'a check before this one was already due');
    assert.deepEqual(w.events.rotated, [{ pf: w.pf(0), generation: 2 }]);
    assert.equal((await w.assertConverged(0)).active.generation, 2);
    assert.equal((await w.assertConverged(1)).active.generation, 1);
    assert.equal(w.rotator.status(w.pf(0)).activeGeneration, 2);
  });

  it('stops checking at close()', async () => {
    const w = (world = await RotationWorld.start({ mode: 'live', maxAgeMs: HOUR }));
    assert.deepEqual(w.clock.pending, [0]);
    await w.rotator.close();
    assert.deepEqual(w.clock.pending, []);
    w.clock.advance(2 * HOUR);
    assert.deepEqual(w.events.rotated, []);
    assert.equal((await w.backing.read(w.pf())).active.generation, 1);
  });
});
