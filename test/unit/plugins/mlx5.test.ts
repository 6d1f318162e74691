/**
 * The mlx5 plugin on a simulated ConnectX-5 (test/fixtures/hosts/connectx5.yaml): the PF stays on
 * mlx5_core and its VFs need no token; firmware, e-switch and per-VF settings through fake
 * mstconfig, devlink and ip that keep a card's state.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import mlx5 from '../../../plugins/mlx5/index.js';
import type { PciAddress } from '../../../src/pci/address.js';
import type { PfConfig, Plugin } from '../../../src/plugins/contract.js';
import { pfDown, pfStatus, pfUp } from '../../../src/plugins/lifecycle/pf.js';
import { renderPlan } from '../../../src/plugins/plan.js';
import { installMellanoxTools, type MellanoxCard } from './support/programs.js';
import { TOKEN, makeWorld, vfOpens, type World } from './support/world.js';
import { rejection } from '../../support/rejection.js';

const PF = '0000:5e:00.0' as PciAddress;

function config(vfs: number, options: Record<string, unknown> = {}): PfConfig {
  return { address: PF, vfs, options };
}

describe('mlx5 plugin', () => {
  let world: World;
  let plugin: Plugin;
  let card: MellanoxCard;
  beforeEach(async () => {
    world = await makeWorld({ name: 'connectx5.yaml' });
    plugin = mlx5.create();
    card = installMellanoxTools(world, PF);
  });
  afterEach(async () => {
    await plugin.close();
    world.assertNoTokenLogged();
    await world.cleanup();
  });

  it('enables VFs with the PF on mlx5_core and takes no token', async () => {
    const refused = await rejection(pfUp(world.ctx, plugin, config(4), TOKEN, { dryRun: false }));
    assert.equal(refused.message, 'PF 0000:5e:00.0 (plugin mlx5) takes no token: its VFs open without one');
    const { plan, status } = await pfUp(world.ctx, plugin, config(4), null, { dryRun: false });
    assert.equal(plan.needsToken, false);
    assert.deepEqual(plan.steps, [{ kind: 'enable-vfs', count: 4 }]);
    assert.equal(status?.state, 'up');
    assert.equal(status?.driver, null);
    assert.equal(await world.sim.driver(PF), 'mlx5_core');
    for (const vf of await world.sim.virtfns(PF)) assert.equal(await world.sim.driver(vf), 'mlx5_core');
  });

  it('moves the VFs to vfio-pci when configured; they open without a token', async () => {
    await pfUp(world.ctx, plugin, config(2, { vfDriver: 'vfio-pci' }), null, { dryRun: false });
    const vfs = await world.sim.virtfns(PF);
    for (const vf of vfs) assert.equal(await world.sim.driver(vf), 'vfio-pci');
    assert.equal(await vfOpens(world.sim, vfs[0] as PciAddress, null), true);
    const again = await pfUp(world.ctx, plugin, config(2, { vfDriver: 'vfio-pci' }), null, { dryRun: false });
    assert.deepEqual(again.plan.steps, []);
  });

  it('prints the mstconfig command when the firmware allows too few VFs', async () => {
    card.firmware = { enabled: true, numVfs: 4 };
    const err = await rejection(pfUp(world.ctx, plugin, config(8), null, { dryRun: true }));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(
      err.message,
      'PF 0000:5e:00.0: the firmware has SRIOV_EN=1 NUM_OF_VFS=4, 8 VFs need SRIOV_EN=1 NUM_OF_VFS>=8: run `mstconfig -d 0000:5e:00.0 set SRIOV_EN=1 NUM_OF_VFS=8` and reboot',
    );
    card.firmware = { enabled: false, numVfs: 8 };
    assert.match(
      (await rejection(pfUp(world.ctx, plugin, config(2), null, { dryRun: true }))).message,
      /has SRIOV_EN=0 NUM_OF_VFS=8, 2 VFs need/,
    );
  });

  it('notes that the firmware was not checked when mstconfig is not installed', async () => {
    world.runner.forget('mstconfig');
    const { plan } = await pfUp(world.ctx, plugin, config(2), null, { dryRun: true });
    assert.deepEqual(plan.notes, [
      'firmware SR-IOV settings not checked: mstconfig is not installed (Debian package mstflint)',
    ]);
    assert.match(
      renderPlan(plan),
      /\n {2}note: firmware SR-IOV settings not checked: mstconfig is not installed \(Debian package mstflint\)$/,
    );
  });

  it('sets switchdev mode, removing existing VFs first because the mode cannot change under them', async () => {
    await pfUp(world.ctx, plugin, config(2), null, { dryRun: false });
    const { plan, status } = await pfUp(world.ctx, plugin, config(2, { eswitchMode: 'switchdev' }), null, {
      dryRun: false,
    });
    assert.deepEqual(plan.steps, [
      { kind: 'remove-vfs', count: 2, reason: 'eswitch-mode can only change without VFs' },
      { kind: 'device', name: 'eswitch-mode', change: 'eswitch mode legacy → switchdev' },
      { kind: 'enable-vfs', count: 2 },
    ]);
    assert.deepEqual(plan.drain, {
      required: true,
      reason: 'its 2 VFs are removed (eswitch-mode can only change without VFs)',
    });
    assert.equal(card.eswitch, 'switchdev');
    assert.equal(status?.state, 'up');
  });

  it('applies per-VF settings with ip link, only where they differ', async () => {
    const settings = {
      vfSettings: [
        { vf: 0, mac: '02:00:00:00:00:0A', trust: true },
        { vf: 1, vlan: 100, spoofchk: false },
      ],
    };
    await pfUp(world.ctx, plugin, config(2, settings), null, { dryRun: false });
    assert.deepEqual(
      world.runner
        .callsOf('ip')
        .filter((c) => c.argv.includes('set'))
        .map((c) => c.argv.join(' ')),
      [
        'ip link set dev enp94s0f0np0 vf 0 mac 02:00:00:00:00:0a trust on',
        'ip link set dev enp94s0f0np0 vf 1 spoofchk off vlan 100',
      ],
    );
    card.vfs.set(1, { mac: '00:00:00:00:00:00', vlan: 7, trust: false, spoofchk: false });
    const status = await pfStatus(world.ctx, plugin, config(2, settings));
    assert.deepEqual(
      status.steps.find((s) => s.step === 'vf-settings'),
      { step: 'vf-settings', done: false, detail: 'VF 1 vlan 7 → 100' },
    );
    const { plan } = await pfUp(world.ctx, plugin, config(2, settings), null, { dryRun: false });
    assert.deepEqual(plan.steps, [
      { kind: 'device', name: 'vf-settings', change: 'on enp94s0f0np0: VF 1 vlan 7 → 100' },
    ]);
    assert.equal(card.vfs.get(1)?.vlan, 100);
  });

  it('rejects settings for a VF that will not exist, and misspelt keys', async () => {
    const err = await rejection(
      pfUp(world.ctx, plugin, config(2, { vfSettings: [{ vf: 2, trust: true }] }), null, { dryRun: true }),
    );
    assert.equal(err.message, 'plugin mlx5, PF 0000:5e:00.0: options.vfSettings names VF 2, but vfs is 2');
    const typo = await rejection(
      pfUp(world.ctx, plugin, config(2, { eswitchmode: 'switchdev' }), null, { dryRun: true }),
    );
    assert.equal(
      typo.message,
      'plugin mlx5, PF 0000:5e:00.0: options: unknown key "eswitchmode" (did you mean "eswitchMode"?)',
    );
    const mac = await rejection(
      pfUp(world.ctx, plugin, config(2, { vfSettings: [{ vf: 0, mac: 'nope' }] }), null, { dryRun: true }),
    );
    assert.equal(
      mac.message,
      'plugin mlx5, PF 0000:5e:00.0: options.vfSettings[0].mac: expected a MAC address such as 02:00:00:00:00:01',
    );
  });

  it('takes a PF back from vfio-pci to mlx5_core, and down removes the VFs', async () => {
    await world.sim.writeAttribute(PF, 'driver_override', 'vfio-pci');
    await world.sim.unbind(PF);
    await world.sim.probe(PF);
    const { plan } = await pfUp(world.ctx, plugin, config(2), null, { dryRun: false });
    assert.deepEqual(plan.steps[0], { kind: 'bind-pf', from: 'vfio-pci', to: 'mlx5_core' });
    assert.equal(await world.sim.driver(PF), 'mlx5_core');
    const down = await pfDown(world.ctx, plugin, config(2), { release: true });
    assert.equal(down.state, 'down');
    assert.equal(await world.sim.driver(PF), 'mlx5_core', 'release leaves a kernel-driver PF alone');
  });
});
