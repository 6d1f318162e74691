/**
 * A small boot storm: 20 installed hooks at `prepare` at once against one `vfbroker serve` on a real
 * dbus-daemon. Every hook must give its guest's right answer (exit status and exact line), none may
 * time out, and afterwards the broker holds exactly the authorised guests' leases. Timing is
 * measured by `npm run reliability` (bench/reliability.ts), never asserted here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ServeWorld } from '../../reliability/serve-world.js';
import { requireHookBundle } from '../../reliability/hook-runner.js';
import { pfsFor, runStorm, stormDefinitions, stormGuests, type StormMix } from '../../reliability/storm.js';
import { ROOT_ONLY } from '../../reliability/root.js';

const MIX: StormMix = { authorised: 8, stale: 6, unauthorised: 6 };

describe('boot storm: 20 hooks at prepare at once', { skip: ROOT_ONLY }, () => {
  let world: ServeWorld;
  const guests = stormGuests(MIX);

  before(async () => {
    requireHookBundle();
    // The hook's deadline is a timing bound: generous here, so a busy CI machine cannot fail a test
    // that is about verdicts. bench/reliability.ts runs the storm with the shipped 5 s.
    world = await ServeWorld.create({ pfCount: pfsFor(MIX), guests, hookDeadlineMs: 30_000 });
    await world.startBroker();
    await world.mirrorHostForHooks();
  });
  after(async () => {
    await world.dispose();
  });

  it('gives every guest its verdict, times none out, and keeps the authorised guests’ leases', async () => {
    const definitions = await stormDefinitions(world, guests);
    const result = await runStorm(world, guests, definitions);

    assert.deepEqual(result.timeouts, []);
    assert.deepEqual(result.wrong, []);
    assert.equal(result.right, 20);
    const client = await world.client();
    const leases = (await client.listPfs()).reduce((n, pf) => n + pf.leases, 0);
    assert.equal(leases, MIX.authorised);
    assert.equal((await client.status()).leases, MIX.authorised);
  });
});
