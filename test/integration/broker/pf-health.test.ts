/**
 * The PF health check (src/broker/pf-health.ts) against a PF whose life cycle the broker is
 * changing. Mid-change the PF is half changed on purpose — SetNumVfs has just removed its VFs — and
 * the check must leave it alone instead of marking it degraded ("PF no longer up") and answering
 * pf-not-ready meanwhile. Once the change is over, a PF that really lost its driver is still caught.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Caller } from '../../../src/broker/api.js';
import { PfHealth } from '../../../src/broker/pf-health.js';
import type { PfState } from '../../../src/broker/api.js';
import { BrokerWorld, pfAddress } from '../../support/broker-world.js';
import { captureLogs } from '../../support/log-capture.js';
import { VfRemovalPause } from '../../unit/plugins/support/world.js';

const ROOT: Caller = { uid: 0, pid: 1, gids: [], unit: null, busName: ':1.0' };
const PF = pfAddress(0);

describe('the PF health check while the broker changes a PF', () => {
  const logs = captureLogs('info');
  let world: BrokerWorld;
  let health: PfHealth;
  /** Arms one health round right after the next `sriov_numvfs` 0 is written, mid-change. */
  const midChange = new VfRemovalPause();
  before(async () => {
    world = await BrokerWorld.start({
      pfCount: 1,
      vfs: 4,
      guests: [],
      logger: logs.logger,
      sysfs: (sim) => midChange.wrap(sim),
    });
    health = new PfHealth({ ...world.bringUpDeps, pfs: world.pfs, leases: world.leases, intervalMs: 60_000 });
  });
  after(async () => {
    await health.close();
    await world.dispose();
  });

  const state = (): PfState | undefined => world.pfs.get(PF)?.state;
  const degradedLines = () => logs.records().filter((l) => l['event'] === 'pf-degraded');

  it('leaves the PF alone while SetNumVfs changes its VF count', async () => {
    let seen: { state: PfState | undefined; sriovNumvfs: string } | null = null;
    midChange.arm(async () => {
      await health.check();
      seen = { state: state(), sriovNumvfs: await world.sim.readAttribute(PF, 'sriov_numvfs') };
    });
    await world.broker.setNumVfs(ROOT, PF, 2);
    assert.deepEqual(seen, { state: 'up', sriovNumvfs: '0' }, 'the check ran mid-change and left the PF up');
    assert.deepEqual(degradedLines(), []);
    assert.equal(state(), 'up');
    assert.equal(world.pfs.get(PF)?.vfs.length, 2);
  });

  it('leaves the PF alone while pf down runs, and a PF that is down afterwards too', async () => {
    // The simulated PF driver is stopped first; the VFs then go: the health round sees the PF half down.
    let seen: PfState | undefined;
    midChange.arm(async () => {
      await health.check();
      seen = state();
    });
    await world.broker.pfDown(ROOT, PF, false);
    assert.equal(seen, 'up');
    assert.equal(state(), 'down');
    await health.check();
    assert.equal(state(), 'down');
    assert.deepEqual(degradedLines(), []);
    await world.broker.pfUp(ROOT, PF, false);
    assert.equal(state(), 'up');
  });

  it('still marks a PF whose driver died once the change is over, and repairs it', async () => {
    await world.drivers.stop(PF);
    await health.check();
    assert.equal(state(), 'degraded');
    assert.deepEqual(
      degradedLines().map((l) => [l['pf'], l['step'], l['msg']]),
      [[PF, 'driver-running', 'PF no longer up']],
    );
    await health.check();
    assert.equal(state(), 'up');
    assert.ok(world.drivers.running(PF));
  });
});
