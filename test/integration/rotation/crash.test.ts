/**
 * The rotation invariant, proven at every step: the token the PF driver holds — as the simulated
 * kernel decides, by which token a VF opens with — is always one the store has (active, or pending
 * while it is applied). Each run "crashes" the broker at one more point (a store write or a PF
 * driver token change, before or after it; the journal writes lie between those), drops it without
 * closing anything, starts the next broker as serve does (PFs up with the active token, recover())
 * and checks that the rotation converged: no journal entry, no pending generation, the PF driver on
 * the active token, the PF up, and TokenRotated emitted exactly when the generation moved.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { GUEST_A, RotationWorld } from './support/world.js';
import type { RotationState } from '../../../src/broker/api.js';

interface Scenario {
  readonly name: string;
  readonly mode: 'live' | 'drain';
  /** The PF driver refuses every token but the one it holds. */
  readonly refuse: boolean;
  /** The points the runs crash at, in order: every gate the rotation passes. */
  readonly points: readonly string[];
}

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'live rotation with a guest running',
    mode: 'live',
    refuse: false,
    points: [
      'store-write-pending:before',
      'store-write-pending:after',
      'driver-set-token:before',
      'driver-set-token:after',
      'store-promote:before',
      'store-promote:after',
      'sync:before',
      'sync:after',
    ],
  },
  {
    name: 'live rotation the PF driver refuses',
    mode: 'live',
    refuse: true,
    points: [
      'store-write-pending:before',
      'store-write-pending:after',
      'driver-set-token:before',
      'driver-set-token:before',
      'driver-set-token:after',
      'store-abandon:before',
      'store-abandon:after',
    ],
  },
  {
    name: 'drain rotation',
    mode: 'drain',
    refuse: false,
    points: [
      'store-write-pending:before',
      'store-write-pending:after',
      'driver-start:before',
      'driver-start:after',
      'store-promote:before',
      'store-promote:after',
      'sync:before',
      'sync:after',
    ],
  },
  {
    name: 'drain rotation the PF driver refuses',
    mode: 'drain',
    refuse: true,
    points: [
      'store-write-pending:before',
      'store-write-pending:after',
      'driver-start:before',
      'driver-start:before',
      'driver-start:after',
      'store-abandon:before',
      'store-abandon:after',
    ],
  },
];

type Outcome = { readonly finished: RotationState } | { readonly crashedAt: string };

/** Runs one rotation that crashes at the gate numbered `crashAt`, checking the invariant at every gate. */
async function rotateUntilCrash(w: RotationWorld, crashAt: number): Promise<Outcome> {
  let gates = 0;
  let crash: (point: string) => void = () => undefined;
  const crashed = new Promise<string>((resolve) => (crash = resolve));
  w.gate = async (point) => {
    await w.driverHolds();
    if (gates++ === crashAt) {
      crash(point);
      // The broker is gone: nothing after this point runs.
      return new Promise<never>(() => undefined);
    }
  };
  return Promise.race([
    w.rotator.rotate(w.managed()).then((finished): Outcome => ({ finished })),
    crashed.then((crashedAt): Outcome => ({ crashedAt })),
  ]);
}

describe('crash at any step of a rotation', () => {
  for (const s of SCENARIOS) {
    it(`${s.name}: every crash point converges after restart`, async () => {
      const crashedAt: string[] = [];
      for (let k = 0; ; k++) {
        const w = await RotationWorld.start({ mode: s.mode });
        try {
          const old = (await w.backing.read(w.pf())).active;
          // A drain rotation with a guest would only wait; its crash while draining has its own test.
          if (s.mode === 'live')
            assert.equal((await w.startGuest(GUEST_A, w.vf(0), old.token)).verdict, 'ok');
          if (s.refuse) w.drivers.acceptOnly(w.pf(), old.token);

          const outcome = await rotateUntilCrash(w, k);
          if ('finished' in outcome) {
            assert.equal(outcome.finished, s.refuse ? 'rolled-back' : 'done');
            break;
          }
          crashedAt.push(outcome.crashedAt);
          const heldAtCrash = await w.driverHolds();
          w.gate = () => Promise.resolve();

          await w.restart();

          const now = await w.assertConverged();
          const moved = now.active.generation === 2;
          assert.ok(now.active.generation === 1 || moved, `generation ${now.active.generation}`);
          if (s.refuse) assert.equal(now.active.generation, 1, 'a refused token became active');
          if (heldAtCrash === 'pending' && s.mode === 'live' && !s.refuse)
            assert.ok(moved, 'a live rotation whose token reached the driver must finish');
          assert.deepEqual(w.events.rotated, moved ? [{ pf: w.pf(), generation: 2 }] : []);
          assert.deepEqual(w.sync.calls.at(-1), moved ? { pf: w.pf(), generation: 2 } : undefined);
          if (!moved) assert.deepEqual(now.active, old);

          // Nothing is left in the way of the next rotation.
          w.drivers.acceptOnly(w.pf(), null);
          assert.equal(await w.rotator.rotate(w.managed()), 'done');
          assert.ok((await w.assertConverged()).active.generation > now.active.generation);
          w.assertNoSecretsLogged();
        } finally {
          await w.dispose();
        }
      }
      assert.deepEqual(crashedAt, s.points);
    });
  }

  it('a broker killed while draining cancels the rotation at restart; the guest keeps running', async () => {
    const w = await RotationWorld.start({ mode: 'drain' });
    try {
      const old = (await w.backing.read(w.pf())).active;
      assert.equal((await w.startGuest(GUEST_A, w.vf(0), old.token)).verdict, 'ok');
      assert.equal(await w.rotator.rotate(w.managed()), 'draining');
      assert.equal(await w.driverHolds(), 'active');

      await w.restart();

      assert.deepEqual((await w.assertConverged()).active, old);
      assert.equal(w.instance.leases.ofPf(w.pf()).length, 1);
      assert.deepEqual(w.events.rotated, []);
      w.assertNoSecretsLogged();
    } finally {
      await w.dispose();
    }
  });

  it('a malformed journal entry stops the start with the file named, rather than guess', async () => {
    const w = await RotationWorld.start({ mode: 'live' });
    try {
      const file = join(w.journalDirectory, `${w.pf()}.json`);
      await writeFile(file, '{"format":1,"pf":"0000:10:00.0","step":"applying"}\n', { mode: 0o600 });
      await assert.rejects(w.restart(), {
        name: 'VfbError',
        code: 'STORE_CORRUPT',
        message: `rotation journal ${file} is malformed`,
      });
    } finally {
      await w.dispose();
    }
  });
});
