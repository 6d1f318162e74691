/**
 * Rotation against VaultStore and the Vault API test server: a store that goes away in the middle
 * of a rotation makes it fail cleanly (the PF driver still holds a token Vault has), and the
 * rotation finishes once Vault is back — at the next periodic check, or at the next broker start.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { GUEST_B, RotationWorld } from './support/world.js';
import { VaultStore } from '../../../src/broker/store/vault-store.js';
import { VfbError } from '../../../src/errors.js';
import { startVaultWorld, type VaultWorld } from '../store/vault-world.js';

let vault: VaultWorld;
let world: RotationWorld | undefined;
let hosts = 0;

before(async () => {
  vault = await startVaultWorld();
});
after(async () => {
  await vault.dispose();
});
afterEach(async () => {
  vault.server.unseal();
  vault.server.clearFaults();
  await world?.dispose();
  world = undefined;
});

async function vaultWorld(): Promise<RotationWorld> {
  const hostId = `rotation-${++hosts}`;
  world = await RotationWorld.start({
    mode: 'live',
    openStore: (logger) => VaultStore.open(vault.options(hostId), { logger }),
    secrets: vault.secrets,
  });
  return world;
}

async function failure(p: Promise<unknown>): Promise<VfbError> {
  const err = await p.then(
    () => assert.fail('expected the rotation to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof VfbError, String(err));
  return err;
}

describe('rotation with Vault going away', () => {
  it('fails cleanly when Vault is sealed after the new token is applied, and the next check finishes it', async () => {
    const w = await vaultWorld();
    w.gate = (point) => {
      if (point === 'driver-set-token:after') vault.server.seal();
      return Promise.resolve();
    };

    const err = await failure(w.rotator.rotate(w.managed()));
    assert.equal(err.code, 'SEALED');
    w.gate = () => Promise.resolve();

    // The driver holds the pending token, which Vault still has; new starts wait meanwhile.
    assert.equal(w.rotator.status(w.pf()).step, 'promoting');
    assert.equal(w.managed().state, 'rotating');
    assert.equal((await w.startGuest(GUEST_B, w.vf(1), null)).verdict, 'rotating');
    vault.server.unseal();
    assert.equal(await w.driverHolds(), 'pending');
    assert.deepEqual(w.events.rotated, []);

    w.clock.advance(60_000);
    await w.rotationsDone(1);
    assert.equal((await w.assertConverged()).active.generation, 2);
    assert.deepEqual(w.events.rotated, [{ pf: w.pf(), generation: 2 }]);
    w.assertNoSecretsLogged();
  });

  it('fails cleanly when the pending generation cannot be written, and the next start converges', async () => {
    const w = await vaultWorld();
    const old = (await w.backing.read(w.pf())).active;
    vault.server.addFault({ match: { method: 'POST', pathPrefix: 'secret/data/' }, kind: 'drop' });

    const err = await failure(w.rotator.rotate(w.managed()));
    assert.equal(err.code, 'UNAVAILABLE');
    assert.equal(w.rotator.status(w.pf()).step, 'writing-pending');
    assert.equal(await w.driverHolds(), 'active');
    // The PF driver was never touched, so guests still start.
    assert.equal((await w.startGuest(GUEST_B, w.vf(1), old.token)).verdict, 'ok');

    vault.server.clearFaults();
    await w.restart();
    assert.deepEqual((await w.assertConverged()).active, old);
    assert.equal(await w.rotator.rotate(w.managed()), 'done');
    assert.equal((await w.assertConverged()).active.generation, 2);
    w.assertNoSecretsLogged();
  });

  it('resumes an unfinished rotation before starting the one asked for', async () => {
    const w = await vaultWorld();
    w.gate = (point) => {
      if (point === 'store-promote:before') vault.server.seal();
      return Promise.resolve();
    };
    assert.equal((await failure(w.rotator.rotate(w.managed()))).code, 'SEALED');
    w.gate = () => Promise.resolve();
    vault.server.unseal();

    assert.equal(await w.rotator.rotate(w.managed()), 'done');

    assert.equal((await w.assertConverged()).active.generation, 3);
    assert.deepEqual(w.events.rotated, [
      { pf: w.pf(), generation: 2 },
      { pf: w.pf(), generation: 3 },
    ]);
    w.assertNoSecretsLogged();
  });
});
