/** What the broker says: broker, store, pf-token. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PfState } from '../../../src/broker/api.js';
import { CX5, PF, UIO_PF, doctor, healthyWorld, one, type World } from './world.js';

function setPf(world: World, state: PfState, generation = 3): void {
  world.broker.pfs = world.broker.pfs.map((p) => (p.address === PF ? { ...p, state, generation } : p));
}

describe('doctor: broker', () => {
  it('reports the running broker', async () => {
    const f = one(await doctor(await healthyWorld()), 'broker');
    assert.deepEqual([f.status, f.what], ['ok', 'broker 0.1.0 serves host node-7: 2 PF(s), 1 lease(s)']);
  });

  it('fails with systemctl status when the broker is not reachable, and skips what only it knows', async () => {
    const world = await healthyWorld();
    world.broker.reachable = false;
    const report = await doctor(world);
    const f = one(report, 'broker');
    assert.equal(f.status, 'fail');
    assert.equal(
      f.what,
      'the broker is not reachable: cannot connect to the system bus: connect ENOENT /run/dbus/system_bus_socket',
    );
    assert.equal(
      f.fix,
      'systemctl status vfbroker (start it with systemctl start vfbroker; its log: journalctl -u vfbroker)',
    );
    assert.deepEqual(
      [one(report, 'store').status, one(report, 'store').what],
      ['skip', 'not checked: the broker is not reachable'],
    );
    assert.equal(one(report, 'pf-token', PF).status, 'skip');
    assert.equal(report.failed, true);
  });
});

describe('doctor: store', () => {
  it('is ok when the broker reaches Vault', async () => {
    const f = one(await doctor(await healthyWorld()), 'store');
    assert.deepEqual(
      [f.status, f.what],
      ['ok', 'the broker reaches its token store (Vault at https://vault.example.net:8200)'],
    );
  });

  it('fails when the broker cannot reach Vault, with vault status and the journal', async () => {
    const world = await healthyWorld();
    world.broker.storeReachable = false;
    const f = one(await doctor(world), 'store');
    assert.equal(f.status, 'fail');
    assert.equal(f.what, 'the broker cannot reach its token store (Vault at https://vault.example.net:8200)');
    assert.equal(
      f.fix,
      'VAULT_ADDR=https://vault.example.net:8200 vault status (sealed: vault operator unseal); the broker’s log says what failed: journalctl -u vfbroker',
    );
  });

  it('points at the token directory of a file store', async () => {
    const world = await healthyWorld();
    world.config = 'hostId: node-7\nstore: { type: file, directory: /var/lib/vfbroker/tokens }\n';
    world.broker.storeReachable = false;
    const f = one(await doctor(world), 'store');
    assert.equal(f.what, 'the broker cannot reach its token store (files in /var/lib/vfbroker/tokens)');
    assert.equal(
      f.fix,
      'ls -ld /var/lib/vfbroker/tokens (root-owned, mode 0700); the broker’s log says what failed: journalctl -u vfbroker',
    );
  });
});

describe('doctor: pf-token', () => {
  it('reports the generation a PF driver holds, and PFs that need none', async () => {
    const report = await doctor(await healthyWorld());
    const pf = one(report, 'pf-token', PF);
    assert.deepEqual(
      [pf.status, pf.what],
      ['ok', 'PF 0000:3b:00.0 is up: its PF driver holds token generation 3 (rotation live)'],
    );
    const cx5 = one(report, 'pf-token', CX5);
    assert.deepEqual([cx5.status, cx5.what], ['ok', 'PF 0000:af:00.0 needs no VF token (plugin mlx5)']);
  });

  it('warns while the PF rotates', async () => {
    const world = await healthyWorld();
    setPf(world, 'rotating');
    const f = one(await doctor(world), 'pf-token', PF);
    assert.deepEqual(
      [f.status, f.what, f.fix],
      [
        'warn',
        'PF 0000:3b:00.0 is rotating its token (generation 3 active, 1 lease(s))',
        'wait for it to finish: vfbroker token status',
      ],
    );
  });

  it('fails a degraded or down PF, and one up without a generation', async () => {
    const world = await healthyWorld();
    setPf(world, 'degraded');
    const degraded = one(await doctor(world), 'pf-token', PF);
    assert.deepEqual(
      [degraded.status, degraded.what, degraded.fix],
      [
        'fail',
        'PF 0000:3b:00.0 is degraded (generation 3)',
        'vfbroker pf status 0000:3b:00.0 shows which step is not done (journalctl -u vfbroker says why); vfbroker pf up 0000:3b:00.0 retries it',
      ],
    );
    setPf(world, 'down', 0);
    const down = one(await doctor(world), 'pf-token', PF);
    assert.deepEqual(
      [down.status, down.what, down.fix],
      [
        'fail',
        'PF 0000:3b:00.0 is down: no PF driver holds its token',
        'vfbroker pf up 0000:3b:00.0 brings it up; journalctl -u vfbroker says why it went down',
      ],
    );
    setPf(world, 'up', 0);
    const none = one(await doctor(world), 'pf-token', PF);
    assert.deepEqual([none.status, none.what], ['fail', 'PF 0000:3b:00.0 is up without a token generation']);
  });

  it('fails a configured PF the broker does not manage, and skips one vfbroker is not asked to', async () => {
    const world = await healthyWorld();
    world.broker.pfs = world.broker.pfs.filter((p) => p.address !== PF);
    const f = one(await doctor(world), 'pf-token', PF);
    assert.deepEqual(
      [f.status, f.what, f.fix],
      [
        'fail',
        'the broker does not manage PF 0000:3b:00.0, although /etc/vfbroker/broker.yaml lists it',
        'systemctl restart vfbroker',
      ],
    );
    const other = one(await doctor(world, { kind: 'vf', address: UIO_PF }), 'pf-token', UIO_PF);
    assert.deepEqual([other.status, other.what], ['skip', 'vfbroker does not manage PF 0000:5e:00.0']);
  });
});
