/**
 * Drain rotation (the PF driver can only take a new token by restarting, which needs every VF
 * closed): the rotation waits for the PF's guests, PrepareGuest answers `rotating` meanwhile, and
 * at the deadline the rotation is cancelled, never forced.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { GUEST_A, GUEST_B, ROOT, RotationWorld, eventually } from './support/world.js';
import { vfOpens } from '../../unit/plugins/support/world.js';

const MINUTE = 60_000;
const DRAIN_MS = 5 * MINUTE;

let world: RotationWorld | undefined;
afterEach(async () => {
  await world?.dispose();
  world = undefined;
});

async function drainWorld(): Promise<RotationWorld> {
  world = await RotationWorld.start({ mode: 'drain', drainTimeoutMs: DRAIN_MS });
  return world;
}

describe('drain rotation', () => {
  it('waits for the guests, answers `rotating` meanwhile, and completes after ReleaseGuest', async () => {
    const w = await drainWorld();
    const old = (await w.backing.read(w.pf())).active;
    assert.equal((await w.startGuest(GUEST_A, w.vf(0), old.token)).verdict, 'ok');
    const startedAt = w.clock.now();

    assert.equal(await w.rotator.rotate(w.managed()), 'draining');

    assert.deepEqual(w.rotator.status(w.pf()), {
      pf: w.pf(),
      mode: 'drain',
      activeGeneration: 1,
      activeSince: old.createdAt,
      pendingGeneration: 2,
      step: 'draining',
      waitingFor: [{ uuid: GUEST_A.uuid, name: GUEST_A.name }],
      deadline: new Date(startedAt + DRAIN_MS).toISOString(),
    });
    assert.equal(w.managed().state, 'rotating');
    const held = await w.startGuest(GUEST_B, w.vf(1), old.token);
    assert.equal(held.verdict, 'rotating');
    assert.match(held.message, /the PF's token is being rotated; retry when it completes/);
    // Nothing reached the PF driver yet: guest A's token still opens VFs.
    assert.equal(await w.driverHolds(), 'active');
    assert.equal(await vfOpens(w.sim, w.vf(1), old.token), true);
    assert.deepEqual(await w.journalFiles(), ['0000:10:00.0.json']);

    await w.stopGuest(GUEST_A);
    await w.rotationsDone(1);

    const now = await w.assertConverged();
    assert.equal(now.active.generation, 2);
    assert.equal(await vfOpens(w.sim, w.vf(1), old.token), 'EACCES');
    assert.equal((await w.startGuest(GUEST_B, w.vf(1), now.active.token)).verdict, 'ok');
    assert.deepEqual(w.sync.calls, [{ pf: w.pf(), generation: 2 }]);
    w.assertNoSecretsLogged();
  });

  it('restarts the PF driver at once when no guest holds a VF', async () => {
    const w = await drainWorld();
    const old = (await w.backing.read(w.pf())).active;
    assert.equal(await w.rotator.rotate(w.managed()), 'done');
    const now = await w.assertConverged();
    assert.equal(now.active.generation, 2);
    assert.equal(await vfOpens(w.sim, w.vf(0), old.token), 'EACCES');
  });

  it('is cancelled at the deadline: the pending generation is dropped and the guest keeps running', async () => {
    const w = await drainWorld();
    const old = (await w.backing.read(w.pf())).active;
    assert.equal((await w.startGuest(GUEST_A, w.vf(0), old.token)).verdict, 'ok');
    assert.equal(await w.rotator.rotate(w.managed()), 'draining');

    w.clock.advance(DRAIN_MS - 1);
    assert.equal(w.rotator.status(w.pf()).step, 'draining');
    w.clock.advance(1);
    await eventually('the cancellation', () => w.rotator.status(w.pf()).step === null);

    const now = await w.assertConverged();
    assert.deepEqual(now.active, old);
    assert.equal(w.instance.leases.ofPf(w.pf()).length, 1);
    assert.deepEqual(w.events.rotated, []);
    const warned = w.logs
      .records()
      .filter((r) => r['level'] === 40)
      .map((r) => r['msg']);
    assert.ok(
      warned.includes(
        'drain deadline passed with guests still holding VFs: rotation cancelled, the PF keeps generation 1',
      ),
    );
    assert.equal((await w.startGuest(GUEST_B, w.vf(1), old.token)).verdict, 'ok');
    w.assertNoSecretsLogged();
  });

  it('notices a pending lease that expired without a release, at the next periodic check', async () => {
    const w = (world = await RotationWorld.start({ mode: 'drain', drainTimeoutMs: 30 * MINUTE }));
    const old = (await w.backing.read(w.pf())).active;
    // Prepared, never started, and libvirt's release never reached the broker: the lease expires (10 min).
    const [prepared] = await w.broker.prepareGuest(ROOT, GUEST_A.uuid, GUEST_A.name, [
      { address: w.vf(0), presentedToken: old.token },
    ]);
    assert.equal(prepared?.verdict, 'ok');
    assert.equal(await w.rotator.rotate(w.managed()), 'draining');

    // The check due at start runs while the lease is live, then schedules the next one a minute on.
    const next = w.clock.nextSchedule();
    w.clock.advance(11 * MINUTE);
    await next;
    assert.equal(w.rotator.status(w.pf()).step, 'draining');
    w.clock.advance(MINUTE);
    await w.rotationsDone(1);
    assert.equal((await w.assertConverged()).active.generation, 2);
  });

  it('keeps a drain interrupted by shutdown in the journal; the next start cancels it', async () => {
    const w = await drainWorld();
    const old = (await w.backing.read(w.pf())).active;
    assert.equal((await w.startGuest(GUEST_A, w.vf(0), old.token)).verdict, 'ok');
    assert.equal(await w.rotator.rotate(w.managed()), 'draining');

    await w.rotator.close();
    assert.deepEqual(await w.journalFiles(), ['0000:10:00.0.json']);
    assert.equal((await w.backing.read(w.pf())).pending?.generation, 2);

    await w.restart();
    const now = await w.assertConverged();
    assert.deepEqual(now.active, old);
    assert.equal(w.instance.leases.ofPf(w.pf()).length, 1, 'the lease survives the restart');
    w.assertNoSecretsLogged();
  });
});
