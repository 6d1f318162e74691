/**
 * The inverted model on a simulated 82576 (test/fixtures/hosts/igb-82576.yaml): the PF on vfio-pci
 * driven by a DPDK application, and one VF opted in to the kernel's igbvf with broker.yaml's
 * `vfDrivers`. The simulator answers as vfio-pci does: it lets the VF go and logs a warning.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import igb from '../../../plugins/igb/index.js';
import type { PciAddress } from '../../../src/pci/address.js';
import type { PfConfig, Plugin, VfDriverChoice } from '../../../src/plugins/contract.js';
import { pfStatus, pfUp } from '../../../src/plugins/lifecycle/pf.js';
import { renderPlan } from '../../../src/plugins/plan.js';
import { renderStatus } from '../../../src/plugins/status.js';
import { installDpdkApp } from './support/programs.js';
import { OTHER_TOKEN, TOKEN, makeWorld, vfOpens, type World } from './support/world.js';
import { rejection } from '../../support/rejection.js';

const PF = '0000:04:00.0' as PciAddress;
/** VF n of port 0 sits at 04:10.(2n): offset 128, stride 2. */
const VF1 = '0000:04:10.2' as PciAddress;
const VF3 = '0000:04:10.6' as PciAddress;
const APP = '/usr/bin/dpdk-pf-app';
const WARNING = `vfio-pci ${PF}: VF ${VF3} bound to driver igbvf while PF bound to driver vfio-pci`;
const UNPROTECTED = `VF 3 (${VF3}) is on igbvf, as vfDrivers in broker.yaml asks: outside VF-token protection`;

function config(
  vfs: number,
  vfDrivers: readonly VfDriverChoice[] = [{ index: 3, driver: 'igbvf' }],
): PfConfig {
  return { address: PF, vfs, options: { command: [APP, '-a', PF], readyPattern: 'link up' }, vfDrivers };
}

describe('VFs opted in to a kernel driver (vfDrivers)', () => {
  let world: World;
  let plugin: Plugin;
  beforeEach(async () => {
    world = await makeWorld({ name: 'igb-82576.yaml' });
    plugin = igb.create();
    installDpdkApp(world, 'dpdk-pf-app');
  });
  afterEach(async () => {
    await plugin.close();
    world.assertNoTokenLogged();
    await world.cleanup();
  });

  it('plans the opted-in VF apart, saying it will be outside VF-token protection', async () => {
    const { plan } = await pfUp(world.ctx, plugin, config(7), null, { dryRun: true });
    assert.equal(
      renderPlan(plan),
      [
        'PF 0000:04:00.0 (8086:10c9), plugin igb, 7 VFs: 5 steps',
        '  1. bind the PF to vfio-pci (now igb)',
        '  2. enable 7 VFs: sriov_numvfs 0 → 7',
        '  3. bind the 6 new VFs to vfio-pci',
        '  4. bind VF 3 to igbvf, as vfDrivers in broker.yaml asks: it is then used outside VF-token protection',
        '  5. start the PF driver dpdk-pf-app (DPDK PF application, token via argv)',
      ].join('\n'),
    );
    assert.deepEqual(plan.bindings, {
      pf: 'vfio-pci',
      vfs: [0, 1, 2, 3, 4, 5, 6].map((index) =>
        index === 3
          ? { index, driver: 'igbvf', optedIn: true }
          : { index, driver: 'vfio-pci', optedIn: false },
      ),
    });
  });

  it('binds the VF to igbvf: no token guards it, vfio-pci logs its warning, status and log say so', async () => {
    const { status } = await pfUp(world.ctx, plugin, config(7), TOKEN, { dryRun: false });
    assert.equal(status?.state, 'up');
    const vfs = await world.sim.virtfns(PF);
    assert.equal(vfs[3], VF3);
    for (const vf of vfs) assert.equal(await world.sim.driver(vf), vf === VF3 ? 'igbvf' : 'vfio-pci');
    assert.equal(await world.sim.readAttribute(VF3, 'driver_override'), 'igbvf');
    assert.equal(await world.sim.readAttribute(VF1, 'driver_override'), 'vfio-pci');
    assert.equal(await vfOpens(world.sim, VF1, OTHER_TOKEN), 'EACCES', 'the other VFs still need the token');
    assert.equal(await vfOpens(world.sim, VF1, TOKEN), true);
    assert.ok((await world.sim.readKernelLog()).includes(WARNING));

    assert.deepEqual(status.outsideTokenProtection, [
      { index: 3, address: VF3, driver: 'igbvf', optedIn: true },
    ]);
    assert.deepEqual(
      status.steps.find((s) => s.step === 'vfs-bound'),
      {
        step: 'vfs-bound',
        done: true,
        detail: '6 VFs on vfio-pci, VF 3 on igbvf (vfDrivers)',
      },
    );
    assert.ok(renderStatus(status).split('\n').includes(`  ! ${UNPROTECTED}`));
    const warned = world.logs.records().filter((l) => l['level'] === 40 && l['msg'] === UNPROTECTED);
    assert.deepEqual(
      warned.map((l) => [l['plugin'], l['pf'], l['vf'], l['driver']]),
      [['igb', PF, VF3, 'igbvf']],
    );
  });

  it('up again changes nothing; status keeps reporting the VF', async () => {
    await pfUp(world.ctx, plugin, config(7), TOKEN, { dryRun: false });
    const again = await pfUp(world.ctx, plugin, config(7), TOKEN, { dryRun: false });
    assert.deepEqual(again.plan.steps, []);
    const status = await pfStatus(world.ctx, plugin, config(7));
    assert.deepEqual(
      status.outsideTokenProtection.map((vf) => vf.address),
      [VF3],
    );
  });

  it('moves a VF of a PF that is up: onto igbvf only once guests are drained, back to vfio-pci freely', async () => {
    await pfUp(world.ctx, plugin, config(7, []), TOKEN, { dryRun: false });
    const optIn = await pfUp(world.ctx, plugin, config(7), TOKEN, { dryRun: true });
    assert.deepEqual(optIn.plan.steps, [
      { kind: 'bind-vf', index: 3, address: VF3, driver: 'igbvf', outsideTokenProtection: true },
    ]);
    assert.deepEqual(optIn.plan.drain, { required: true, reason: 'VF 3 moves from vfio-pci to igbvf' });
    await pfUp(world.ctx, plugin, config(7), TOKEN, { dryRun: false });
    assert.equal(await world.sim.driver(VF3), 'igbvf');

    const optOut = await pfUp(world.ctx, plugin, config(7, []), TOKEN, { dryRun: false });
    assert.deepEqual(optOut.plan.steps, [
      { kind: 'bind-vfs', driver: 'vfio-pci', count: 1, addresses: [VF3] },
    ]);
    assert.equal(optOut.plan.drain.required, false);
    assert.equal(await world.sim.driver(VF3), 'vfio-pci');
    assert.deepEqual(optOut.status?.outsideTokenProtection, []);
  });

  it('reports a VF nobody opted in that a host driver took, as not bound and unprotected', async () => {
    await pfUp(world.ctx, plugin, config(7, []), TOKEN, { dryRun: false });
    await world.sim.writeAttribute(VF1, 'driver_override', 'igbvf');
    await world.sim.unbind(VF1);
    await world.sim.probe(VF1);
    const status = await pfStatus(world.ctx, plugin, config(7, []));
    assert.equal(status.state, 'degraded');
    const lines = renderStatus(status).split('\n');
    assert.ok(lines.includes(`  [ ] vfs-bound: not on vfio-pci: VF 1 ${VF1} (igbvf)`), lines.join('\n'));
    assert.ok(
      lines.includes(
        `  ! VF 1 (${VF1}) is on igbvf, which broker.yaml does not ask for: outside VF-token protection`,
      ),
    );
  });

  it('ignores an opt-in beyond the VFs asked for now (SetNumVfs lowered the count)', async () => {
    const { plan, status } = await pfUp(world.ctx, plugin, config(2), TOKEN, { dryRun: false });
    assert.deepEqual(
      plan.steps.map((s) => s.kind),
      ['bind-pf', 'enable-vfs', 'bind-vfs', 'start-driver'],
    );
    assert.deepEqual(status?.outsideTokenProtection, []);
  });

  it('names a driver that is not loaded, and refuses one sysfs cannot name', async () => {
    const missing = await rejection(
      pfUp(world.ctx, plugin, config(7, [{ index: 3, driver: 'ixgbevf' }]), TOKEN, { dryRun: false }),
    );
    assert.equal(
      missing.message,
      `${VF3} cannot bind to ixgbevf: the driver is not loaded (run \`modprobe ixgbevf\`)`,
    );
    const invalid = await rejection(
      pfUp(world.ctx, plugin, config(7, [{ index: 3, driver: '../igbvf' }]), TOKEN, { dryRun: true }),
    );
    assert.equal(invalid.code, 'INVALID_ARGUMENT');
    assert.equal(invalid.message, 'invalid driver name "../igbvf"');
  });
});
