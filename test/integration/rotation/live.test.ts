/**
 * Live rotation (the PF driver replaces its token while VFs are open) through the broker core, on
 * the simulated kernel: which token the PF holds is always checked by opening a VF with it.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { GUEST_A, GUEST_B, RotationWorld } from './support/world.js';
import { ManagedPfs, type ManagedPf } from '../../../src/broker/managed-pfs.js';
import { createRotator } from '../../../src/broker/rotation/index.js';
import { FileStore } from '../../../src/broker/store/file-store.js';
import { TokenCache } from '../../../src/broker/store/token-cache.js';
import { VfbError } from '../../../src/errors.js';
import { vfOpens } from '../../unit/plugins/support/world.js';

let world: RotationWorld | undefined;
afterEach(async () => {
  await world?.dispose();
  world = undefined;
});

async function liveWorld(): Promise<RotationWorld> {
  world = await RotationWorld.start({ mode: 'live' });
  return world;
}

async function rejection(p: Promise<unknown>): Promise<VfbError> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof VfbError, String(err));
  return err;
}

function messages(w: RotationWorld, level: number): string[] {
  return w.logs
    .records()
    .filter((r) => r['level'] === level)
    .map((r) => String(r['msg']));
}

const WARN = 40;
const ERROR = 50;

describe('live rotation', () => {
  it('completes while a guest runs; the old token is stale for the next start, the running guest keeps its VF', async () => {
    const w = await liveWorld();
    const old = (await w.backing.read(w.pf())).active;
    assert.equal((await w.startGuest(GUEST_A, w.vf(0), old.token)).verdict, 'ok');

    assert.equal(await w.rotator.rotate(w.managed()), 'done');

    const now = await w.assertConverged();
    assert.equal(now.active.generation, 2);
    assert.notEqual(now.active.token, old.token);
    assert.equal(await vfOpens(w.sim, w.vf(1), old.token), 'EACCES');
    assert.equal(await vfOpens(w.sim, w.vf(1), now.active.token), true);
    // Guest A's lease and its open VF are untouched; B presenting the old token is told to sync.
    assert.equal(w.instance.leases.ofPf(w.pf()).length, 1);
    const stale = await w.startGuest(GUEST_B, w.vf(1), old.token);
    assert.equal(stale.verdict, 'token-stale');
    assert.match(stale.message, /active generation 2\b.*vfbroker guest sync guest-b/);
    assert.equal((await w.startGuest(GUEST_B, w.vf(1), now.active.token)).verdict, 'ok');

    assert.deepEqual(w.events.rotated, [{ pf: w.pf(), generation: 2 }]);
    assert.deepEqual(w.sync.calls, [{ pf: w.pf(), generation: 2 }]);
    const status = w.rotator.status(w.pf());
    assert.deepEqual(
      { ...status, activeSince: typeof status.activeSince },
      {
        pf: w.pf(),
        mode: 'live',
        activeGeneration: 2,
        activeSince: 'string',
        pendingGeneration: null,
        step: null,
        waitingFor: [],
        deadline: null,
      },
    );
    assert.equal(status.activeSince, now.active.createdAt);
    w.assertNoSecretsLogged();
  });

  it('rolls back when the PF driver refuses the new token, and says so in the log', async () => {
    const w = await liveWorld();
    const old = (await w.backing.read(w.pf())).active;
    w.drivers.acceptOnly(w.pf(), old.token);

    assert.equal(await w.rotator.rotate(w.managed()), 'rolled-back');

    const now = await w.assertConverged();
    assert.deepEqual(now.active, old);
    assert.deepEqual(w.events.rotated, []);
    assert.deepEqual(w.sync.calls, []);
    assert.ok(
      messages(w, WARN).includes(
        'rotation rolled back: generation 2 abandoned, the PF driver keeps generation 1',
      ),
      messages(w, WARN).join('\n'),
    );
    // The abandoned generation's number is never handed out again.
    w.drivers.acceptOnly(w.pf(), null);
    assert.equal(await w.rotator.rotate(w.managed()), 'done');
    assert.equal((await w.assertConverged()).active.generation, 3);
    w.assertNoSecretsLogged();
  });

  it('answers BUSY to a second rotation of the same PF while the first runs', async () => {
    const w = await liveWorld();
    const [first, second] = await Promise.allSettled([
      w.rotator.rotate(w.managed()),
      w.rotator.rotate(w.managed()),
    ]);
    assert.deepEqual(first, { status: 'fulfilled', value: 'done' });
    const err: unknown = second.status === 'rejected' ? second.reason : null;
    assert.ok(err instanceof VfbError, 'the second rotation was not refused');
    assert.equal(err.code, 'BUSY');
    assert.match(err.message, /^a rotation of PF 0000:10:00\.0 is already under way/);
    assert.equal((await w.assertConverged()).active.generation, 2);
  });

  it('lets compare-and-set decide between two brokers: the loser is BUSY and touches neither store nor driver', async () => {
    const w = await liveWorld();
    // A second broker on the same store directory, with its own cache and journal.
    const otherStore = await FileStore.open({ directory: join(w.dir, 'tokens') }, w.logs.logger);
    const otherPfs = new ManagedPfs();
    const otherManaged: ManagedPf = { ...w.managed(), state: 'up' };
    otherPfs.add(otherManaged);
    const otherTokens = new TokenCache(otherStore);
    await otherTokens.get(w.pf());
    const other = createRotator({
      store: otherStore,
      tokens: otherTokens,
      leases: w.instance.leases,
      pfs: otherPfs,
      pluginContext: w.context,
      journalDirectory: join(w.dir, 'other-journal'),
      events: w.events,
      logger: w.logs.logger,
      clock: w.clock,
    });
    try {
      let reached: () => void = () => undefined;
      let proceed: () => void = () => undefined;
      const atPending = new Promise<void>((resolve) => (reached = resolve));
      const held = new Promise<void>((resolve) => (proceed = resolve));
      w.gate = (point) => (point === 'store-write-pending:after' ? (reached(), held) : Promise.resolve());
      const winner = w.rotator.rotate(w.managed());
      await atPending;

      const err = await rejection(other.rotate(otherManaged));
      assert.equal(err.code, 'BUSY');
      assert.equal(
        err.message,
        'PF 0000:10:00.0 has pending generation 2 from another broker or tool; rotate again once it is promoted or abandoned',
      );
      assert.deepEqual(other.status(w.pf()).step, null);
      assert.equal(await w.driverHolds(), 'active');

      proceed();
      assert.equal(await winner, 'done');
      assert.equal((await w.assertConverged()).active.generation, 2);
    } finally {
      await other.close();
      await otherStore.close();
    }
  });

  it('reports guests whose definitions cannot be synced and keeps the new token', async () => {
    const w = await liveWorld();
    w.sync.failing = [GUEST_B.name];
    assert.equal(await w.rotator.rotate(w.managed()), 'done');
    assert.equal((await w.assertConverged()).active.generation, 2);
    assert.ok(
      messages(w, WARN).includes('definition of guest guest-b not synced; run: vfbroker guest sync guest-b'),
    );

    w.sync.throwing = true;
    assert.equal(await w.rotator.rotate(w.managed()), 'done');
    assert.equal((await w.assertConverged()).active.generation, 3);
    assert.ok(
      messages(w, ERROR).includes(
        'guest definitions not synced; the new token stays active: run `vfbroker guest sync` for the guests of this PF',
      ),
    );
    assert.deepEqual(
      w.events.rotated.map((e) => e.generation),
      [2, 3],
    );
    w.assertNoSecretsLogged();
  });

  it('refuses PFs it cannot rotate: no token, or not up', async () => {
    const w = await liveWorld();
    const managed = w.managed();
    const tokenless: ManagedPf = {
      ...managed,
      plugin: {
        ...managed.plugin,
        manifest: { ...managed.plugin.manifest, needsToken: false, rotation: 'none' },
      },
    };
    const none = await rejection(w.rotator.rotate(tokenless));
    assert.equal(none.code, 'INVALID_ARGUMENT');
    assert.equal(
      none.message,
      'PF 0000:10:00.0 (plugin sim-live) has no token to rotate: its VFs open without one',
    );

    managed.state = 'degraded';
    const down = await rejection(w.rotator.rotate(managed));
    assert.equal(down.code, 'UNAVAILABLE');
    assert.equal(down.message, 'PF 0000:10:00.0 is degraded, not up: its token cannot be rotated now');
    assert.deepEqual(await w.journalFiles(), []);
    assert.equal((await w.backing.read(w.pf())).pending, null);
  });
});
