/**
 * The generic plugin on a simulated QEMU NVMe with SR-IOV (test/fixtures/hosts/qemu-nvme.yaml):
 * vfbroker's PF holder, faked to the agreed protocol on top of the simulator's VFIO, holds the PF
 * and sets the token; rotation is live.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import generic from '../../../plugins/generic/index.js';
import type { PciAddress } from '../../../src/pci/address.js';
import type { PfConfig, Plugin } from '../../../src/plugins/contract.js';
import { pfDown, pfStatus, pfUp, restartDriver, rotateLive } from '../../../src/plugins/lifecycle/pf.js';
import { installHolder, type HolderBehaviour } from './support/programs.js';
import { OTHER_TOKEN, TOKEN, makeWorld, vfOpens, type World } from './support/world.js';
import { rejection } from '../../support/rejection.js';

const PF = '0000:00:04.0' as PciAddress;
const CONFIG: PfConfig = { address: PF, vfs: 2 };

describe('generic plugin', () => {
  let world: World;
  let plugin: Plugin;
  let holder: { behaviour: HolderBehaviour; running: () => unknown[] };
  beforeEach(async () => {
    world = await makeWorld({ name: 'qemu-nvme.yaml' });
    plugin = generic.create();
    holder = installHolder(world);
  });
  afterEach(async () => {
    await plugin.close();
    assert.equal(holder.running().length, 0, 'close() stops every holder');
    world.assertNoTokenLogged();
    await world.cleanup();
  });

  it('starts the holder without the token in argv, sends it on stdin, then creates the VFs', async () => {
    const { plan, status } = await pfUp(world.ctx, plugin, CONFIG, TOKEN, { dryRun: false });
    assert.deepEqual(
      plan.steps.map((s) => s.kind),
      ['bind-pf', 'start-driver', 'enable-vfs', 'bind-vfs'],
    );
    assert.equal(status?.state, 'up');
    assert.equal(status?.driver?.detail.endsWith('PF open, token set'), true);
    const [spawn] = world.runner.callsOf('node');
    assert.deepEqual(spawn?.argv.slice(2), ['--pf', PF]);
    assert.match(spawn?.argv[1] ?? '', /\/src\/pfholder\/main\.js$/);
    assert.ok(!(spawn?.argv.join(' ') ?? '').includes(TOKEN));
    assert.deepEqual(world.runner.processes[0]?.input.slice(0, 1), [
      `${JSON.stringify({ op: 'set-token', token: TOKEN })}\n`,
    ]);
    const vf = (await world.sim.virtfns(PF))[1] as PciAddress;
    assert.equal(await vfOpens(world.sim, vf, TOKEN), true);
    assert.equal(await vfOpens(world.sim, vf, null), 'EACCES');
  });

  it('rotates live: an open VF stays open, new opens need the new token', async () => {
    await pfUp(world.ctx, plugin, CONFIG, TOKEN, { dryRun: false });
    const vf = (await world.sim.virtfns(PF))[0] as PciAddress;
    const guest = await world.sim.vfio.openDevice(`${vf} vf_token=${TOKEN}`);
    await rotateLive(world.ctx, plugin, CONFIG, OTHER_TOKEN);
    assert.equal(await vfOpens(world.sim, vf, TOKEN), 'EACCES');
    assert.equal(await vfOpens(world.sim, vf, OTHER_TOKEN), true);
    await world.sim.vfio.closeDevice(guest);
    assert.equal(world.runner.callsOf('node').length, 1, 'the holder was not restarted');
    const err = await rejection(restartDriver(world.ctx, plugin, CONFIG, TOKEN));
    assert.equal(err.message, 'PF 0000:00:04.0: plugin generic rotates by live, not drain');
  });

  it('reports the errno when the holder cannot set the token, and stops that holder', async () => {
    holder.behaviour.refuseSetToken = 'EACCES';
    const err = await rejection(pfUp(world.ctx, plugin, CONFIG, TOKEN, { dryRun: false }));
    assert.equal(err.code, 'KERNEL_REFUSED');
    assert.equal(
      err.message,
      'the PF holder could not set the token of PF 0000:00:04.0: VFIO_DEVICE_FEATURE refused (EACCES)',
    );
    assert.equal(holder.running().length, 0);
    const status = await pfStatus(world.ctx, plugin, CONFIG);
    assert.deepEqual(
      status.steps.map((s) => [s.step, s.done]),
      [
        ['pf-bound', true],
        ['vfs-enabled', false],
        ['vfs-bound', false],
        ['driver-running', false],
      ],
    );
    holder.behaviour.refuseSetToken = null;
    assert.equal((await pfUp(world.ctx, plugin, CONFIG, TOKEN, { dryRun: false })).status?.state, 'up');
  });

  it('reports why the holder is not ready', async () => {
    holder.behaviour.refuseReady = 'EPERM';
    const err = await rejection(pfUp(world.ctx, plugin, CONFIG, TOKEN, { dryRun: false }));
    assert.equal(
      err.message,
      'the PF holder could not open PF 0000:00:04.0: IOMMU group 3 is not viable (EPERM)',
    );
    assert.equal(holder.running().length, 0);
  });

  it('notices a holder that died and starts a new one on the next up', async () => {
    await pfUp(world.ctx, plugin, CONFIG, TOKEN, { dryRun: false });
    world.runner.processes[0]?.exit(1);
    const status = await pfStatus(world.ctx, plugin, CONFIG);
    assert.equal(status.state, 'degraded');
    assert.equal(
      status.driver?.detail,
      `PF holder exited unexpectedly (status 1) at ${status.driver?.lastExit?.at ?? ''}`,
    );
    const { plan } = await pfUp(world.ctx, plugin, CONFIG, TOKEN, { dryRun: false });
    assert.deepEqual(
      plan.steps.map((s) => s.kind),
      ['start-driver'],
    );
    assert.equal(holder.running().length, 1);
  });

  it('down stops the holder and removes the VFs; release unbinds the PF', async () => {
    await pfUp(world.ctx, plugin, CONFIG, TOKEN, { dryRun: false });
    const down = await pfDown(world.ctx, plugin, CONFIG);
    assert.equal(down.state, 'down');
    assert.equal(holder.running().length, 0);
    assert.equal(await world.sim.readAttribute(PF, 'sriov_numvfs'), '0');
    await pfDown(world.ctx, plugin, CONFIG, { release: true });
    assert.equal(await world.sim.driver(PF), null);
  });
});
