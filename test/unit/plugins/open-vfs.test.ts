/**
 * VFs an application holds open through VFIO (a DPDK application or a QEMU with a token from
 * GetToken: no lease), on a simulated 82576 whose PF is on vfio-pci. The kernel would make any
 * removal of such a VF wait for the application, with no limit; the life cycle refuses with BUSY
 * first, names the VF and its VFIO group, and changes nothing. Closed, the same change goes through.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import igb from '../../../plugins/igb/index.js';
import type { PciAddress } from '../../../src/pci/address.js';
import type { PfConfig, Plugin, VfDriverChoice } from '../../../src/plugins/contract.js';
import { pfDown, pfStatus, pfUp } from '../../../src/plugins/lifecycle/pf.js';
import { installDpdkApp } from './support/programs.js';
import { TOKEN, makeWorld, sysfsState, type World } from './support/world.js';
import { rejection } from '../../support/rejection.js';

const PF = '0000:04:00.0' as PciAddress;
/** VF n of port 0 sits at 04:10.(2n): offset 128, stride 2. */
const VF0 = '0000:04:10.0' as PciAddress;
const VF1 = '0000:04:10.2' as PciAddress;
const APP = '/usr/bin/dpdk-pf-app';

function config(vfs: number, vfDrivers: readonly VfDriverChoice[] = []): PfConfig {
  return { address: PF, vfs, options: { command: [APP, '-a', PF], readyPattern: 'link up' }, vfDrivers };
}

describe('VFs open through VFIO', () => {
  let world: World;
  let plugin: Plugin;
  /** Opens a VF as a DPDK application does, with the PF's token; returns the close. */
  const openVf = async (vf: PciAddress) => {
    const handle = await world.sim.vfio.openDevice(`${vf} vf_token=${TOKEN}`);
    return () => world.sim.vfio.closeDevice(handle);
  };
  const node = async (vf: PciAddress) => `/dev/vfio/${String(await world.sim.iommuGroup(vf))}`;
  /** What must not change when a change is refused: sysfs, and the PF driver still running. */
  const untouched = async () => ({
    sysfs: sysfsState(world.sim),
    driver: (await pfStatus(world.ctx, plugin, config(2))).driver?.detail,
  });

  beforeEach(async () => {
    world = await makeWorld({ name: 'igb-82576.yaml' });
    plugin = igb.create();
    installDpdkApp(world, 'dpdk-pf-app');
    await pfUp(world.ctx, plugin, config(2), TOKEN, { dryRun: false });
  });
  afterEach(async () => {
    await plugin.close();
    world.assertNoTokenLogged();
    await world.cleanup();
  });

  it('refuses a new VF count while a VF is open, naming it and its group, and changes nothing', async () => {
    const close = await openVf(VF1);
    const before = await untouched();
    const err = await rejection(pfUp(world.ctx, plugin, config(4), TOKEN, { dryRun: false }));
    assert.equal(err.code, 'BUSY');
    assert.equal(
      err.message,
      `PF ${PF} cannot remove its 2 VFs (the count changes from 2 to 4 and the kernel needs 0 in between): ` +
        `VF 1 ${VF1} is open (VFIO group ${await node(VF1)} is held by a process, a DPDK application or QEMU); ` +
        'close it first: the kernel would wait for it',
    );
    assert.equal(err.hint, `fuser -v ${await node(VF1)}`);
    assert.deepEqual(await untouched(), before);
    assert.equal((await pfStatus(world.ctx, plugin, config(2))).state, 'up');

    await close();
    const { status } = await pfUp(world.ctx, plugin, config(4), TOKEN, { dryRun: false });
    assert.equal(status?.state, 'up');
    assert.equal((await world.sim.virtfns(PF)).length, 4);
  });

  it('refuses a dry run the same way: the broker plans first', async () => {
    await openVf(VF1);
    const err = await rejection(pfUp(world.ctx, plugin, config(4), null, { dryRun: true }));
    assert.equal(err.code, 'BUSY');
  });

  it('names every open VF', async () => {
    await openVf(VF0);
    await openVf(VF1);
    const err = await rejection(pfUp(world.ctx, plugin, config(1), TOKEN, { dryRun: false }));
    const [n0, n1] = [await node(VF0), await node(VF1)];
    assert.equal(
      err.message,
      `PF ${PF} cannot remove its 2 VFs (the count changes from 2 to 1 and the kernel needs 0 in between): ` +
        `VF 0 ${VF0} (VFIO group ${n0}), VF 1 ${VF1} (VFIO group ${n1}) are open ` +
        '(held by processes, DPDK applications or QEMU); close them first: the kernel would wait for them',
    );
    assert.equal(err.hint, `fuser -v ${n0} ${n1}`);
    assert.equal(err.details['vfs'], `${VF0} ${VF1}`);
  });

  it('refuses pf down before stopping the PF driver; closed, down goes through', async () => {
    const close = await openVf(VF1);
    const before = await untouched();
    const err = await rejection(pfDown(world.ctx, plugin, config(2)));
    assert.equal(err.code, 'BUSY');
    assert.match(err.message, new RegExp(`^PF ${PF} cannot remove its 2 VFs: VF 1 ${VF1} is open `));
    assert.deepEqual(await untouched(), before);

    await close();
    const status = await pfDown(world.ctx, plugin, config(2));
    assert.equal(status.state, 'down');
    assert.deepEqual(await world.sim.virtfns(PF), []);
  });

  it('refuses to move an open VF off vfio-pci (the unbind would wait as well)', async () => {
    await openVf(VF1);
    const before = await untouched();
    const err = await rejection(
      pfUp(world.ctx, plugin, config(2, [{ index: 1, driver: 'igbvf' }]), TOKEN, { dryRun: false }),
    );
    assert.equal(err.code, 'BUSY');
    assert.match(
      err.message,
      new RegExp(`^PF ${PF} cannot move VFs to another driver: VF 1 ${VF1} is open `),
    );
    assert.deepEqual(await untouched(), before);
  });

  it('still refuses at the write of 0 when a VF was opened after the plan was made', async () => {
    const { plan } = await pfUp(world.ctx, plugin, config(4), TOKEN, { dryRun: true });
    await openVf(VF1);
    const err = await rejection(plugin.apply(world.ctx, plan, TOKEN));
    assert.equal(err.code, 'BUSY');
    assert.match(err.message, new RegExp(`^PF ${PF} cannot remove its 2 VFs: VF 1 ${VF1} is open `));
    assert.deepEqual(await world.sim.virtfns(PF), [VF0, VF1], 'sriov_numvfs was not written');
    assert.equal(await world.sim.driver(VF1), 'vfio-pci');
  });
});
