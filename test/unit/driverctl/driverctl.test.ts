/**
 * driverctl compatibility on simulated hosts: the overrides driverctl keeps (pci-<address> files in
 * a temporary driverctl.d) checked against a plan before `pf up` changes anything, and the
 * driverctl commands printed for `vfbroker pf up --print-driverctl`.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import igb from '../../../plugins/igb/index.js';
import mlx5 from '../../../plugins/mlx5/index.js';
import { parseBrokerConfig, type PfConfig as PfEntry } from '../../../src/config/broker-config.js';
import { driverctlCommands } from '../../../src/driverctl/commands.js';
import { checkDriverctl } from '../../../src/driverctl/conflicts.js';
import { vfAddresses } from '../../../src/driverctl/vf-addresses.js';
import type { PciAddress } from '../../../src/pci/address.js';
import type { PfConfig, Plugin } from '../../../src/plugins/contract.js';
import { pfUp } from '../../../src/plugins/lifecycle/pf.js';
import type { PfPlan } from '../../../src/plugins/plan.js';
import { installDpdkApp, installMellanoxTools } from '../plugins/support/programs.js';
import { TOKEN, makeWorld, sysfsState, type World } from '../plugins/support/world.js';
import { rejection } from '../../support/rejection.js';

const BROKER_YAML = '/etc/vfbroker/broker.yaml';
const PF = '0000:04:00.0' as PciAddress;
const VF1 = '0000:04:10.2' as PciAddress;
const VF3 = '0000:04:10.6' as PciAddress;

/** broker.yaml with one 82576 PF: its entry at line 4, column 5; `3: igbvf` at line 7, column 18. */
function brokerYaml(directory: string): string {
  return [
    'store: { type: file }',
    `driverctl: { directory: ${directory} }`,
    'pfs:',
    '  - address: 0000:04:00.0',
    '    vfs: 7',
    '    options: { command: [/usr/bin/dpdk-pf-app, -a, 0000:04:00.0], readyPattern: link up }',
    '    vfDrivers: { 3: igbvf }',
    '',
  ].join('\n');
}

function pluginConfig(entry: PfEntry): PfConfig {
  return { address: entry.address, vfs: entry.vfs, options: entry.options, vfDrivers: entry.vfDrivers };
}

describe('driverctl overrides against a plan', () => {
  let world: World;
  let plugin: Plugin;
  let dir: string;
  let entry: PfEntry;
  beforeEach(async () => {
    world = await makeWorld({ name: 'igb-82576.yaml' });
    plugin = igb.create();
    installDpdkApp(world, 'dpdk-pf-app');
    dir = path.join(world.dir, 'driverctl.d');
    await mkdir(dir);
    const config = parseBrokerConfig(brokerYaml(dir), BROKER_YAML, { hostname: 'node-7' });
    assert.equal(config.driverctl.directory, dir);
    const [first] = config.pfs;
    assert.ok(first);
    entry = first;
  });
  afterEach(async () => {
    await plugin.close();
    world.assertNoTokenLogged();
    await world.cleanup();
  });

  const override = (address: string, content: string) => writeFile(path.join(dir, `pci-${address}`), content);
  const up = (dryRun: boolean, directory: string | null = dir) =>
    pfUp(world.ctx, plugin, pluginConfig(entry), dryRun ? null : TOKEN, {
      dryRun,
      check: (plan) => checkDriverctl(plan, entry, world.sim, directory),
    });

  it('refuses a PF driverctl keeps on igb while the plugin wants vfio-pci, and changes nothing', async () => {
    await override(PF, 'igb\n');
    const before = sysfsState(world.sim);
    const err = await rejection(up(false));
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(
      err.message,
      `driverctl's ${dir}/pci-${PF} puts PF ${PF} on igb at boot, but ${BROKER_YAML}:4:5 wants it on vfio-pci (plugin igb): run \`driverctl unset-override ${PF}\`, or change that entry`,
    );
    assert.equal(
      err.hint,
      `\`driverctl unset-override ${PF}\` removes driverctl's override; then run \`vfbroker pf up\` again`,
    );
    assert.deepEqual(err.details, {
      file: `${dir}/pci-${PF}`,
      address: PF,
      config: `${BROKER_YAML}:4:5`,
      wanted: 'vfio-pci (plugin igb)',
      conflicts: 1,
    });
    assert.deepEqual(sysfsState(world.sim), before);
    assert.equal(world.runner.callsOf('dpdk-pf-app').length, 0);
  });

  it('refuses a VF driverctl keeps on igbvf while vfbroker wants it on vfio-pci, before and after it exists', async () => {
    await override(VF1, 'igbvf\n');
    assert.equal(
      (await rejection(up(true))).message,
      `driverctl's ${dir}/pci-${VF1} puts VF 1 (${VF1}) of PF ${PF} on igbvf each time the VF is created, but ${BROKER_YAML}:4:5 wants it on vfio-pci: run \`rm ${dir}/pci-${VF1}\`, or opt the VF in with \`vfDrivers: { 1: igbvf }\` there`,
    );
    await writeFile(path.join(dir, `pci-${VF1}`), '');
    await up(false);
    await override(VF1, 'igbvf\n');
    assert.match(
      (await rejection(up(true))).message,
      /: run `driverctl unset-override 0000:04:10\.2`, or opt the VF in/,
    );
  });

  it('points at the vfDrivers line for an opted-in VF driverctl keeps elsewhere', async () => {
    await override(VF3, 'vfio-pci\n');
    assert.equal(
      (await rejection(up(true))).message,
      `driverctl's ${dir}/pci-${VF3} puts VF 3 (${VF3}) of PF ${PF} on vfio-pci each time the VF is created, but ${BROKER_YAML}:7:18 wants it on igbvf: run \`rm ${dir}/pci-${VF3}\`, or change vfDrivers there`,
    );
  });

  it('describes "none" and a file without a driver, and counts the other conflicts', async () => {
    await override(PF, 'none\n');
    await override(VF1, '\n');
    const err = await rejection(up(true));
    assert.equal(
      err.message,
      `driverctl's ${dir}/pci-${PF} puts PF ${PF} on no driver ("none") at boot, but ${BROKER_YAML}:4:5 wants it on vfio-pci (plugin igb): run \`driverctl unset-override ${PF}\`, or change that entry (and 1 more driverctl conflict)`,
    );
    await override(PF, 'vfio-pci\n');
    assert.equal(
      (await rejection(up(true))).message,
      `driverctl's ${dir}/pci-${VF1} puts VF 1 (${VF1}) of PF ${PF} on its default driver (the file holds no driver name) each time the VF is created, but ${BROKER_YAML}:4:5 wants it on vfio-pci: run \`rm ${dir}/pci-${VF1}\`, or change that entry`,
    );
  });

  it('leaves the plan as it is when driverctl agrees, and up goes through', async () => {
    await override(PF, 'vfio-pci\n');
    await override(VF3, 'igbvf\n');
    await override('0000:04:10.0', 'vfio-pci\n');
    await override('0000:04:00.1', 'igb\n');
    await writeFile(path.join(dir, `pci-${VF1}`), '');
    const unchecked = await pfUp(world.ctx, plugin, pluginConfig(entry), null, { dryRun: true });
    const checked = await up(true);
    assert.deepEqual(checked.plan, unchecked.plan);
    const { status } = await up(false);
    assert.equal(status?.state, 'up');
    assert.equal(await world.sim.driver(VF3), 'igbvf');
  });

  it('reads nothing without a directory, and finds nothing in a missing one', async () => {
    await override(PF, 'igb\n');
    const plan = (await up(true, null)).plan;
    await checkDriverctl(plan, entry, world.sim, null);
    await checkDriverctl(plan, entry, world.sim, path.join(world.dir, 'no-such-dir'));
  });

  it('predicts the VF addresses before the VFs exist, as the kernel then creates them', async () => {
    const predicted = await vfAddresses(world.sim, PF, 7);
    await up(false);
    assert.deepEqual(predicted, await world.sim.virtfns(PF));
  });
});

describe('driverctl commands for vfbroker pf up --print-driverctl', () => {
  let world: World | undefined;
  let plugin: Plugin | undefined;
  afterEach(async () => {
    await plugin?.close();
    await world?.cleanup();
  });

  async function igbPlan(): Promise<{ world: World; plan: PfPlan; dir: string }> {
    world = await makeWorld({ name: 'igb-82576.yaml' });
    plugin = igb.create();
    const dir = path.join(world.dir, 'driverctl.d');
    const [entry] = parseBrokerConfig(brokerYaml(dir), BROKER_YAML, { hostname: 'node-7' }).pfs;
    assert.ok(entry);
    const { plan } = await pfUp(world.ctx, plugin, pluginConfig(entry), null, { dryRun: true });
    return { world, plan, dir };
  }

  it('pins the PF to vfio-pci around a down and up, and the opted-in VF to igbvf, but no vfio-pci VF', async () => {
    const { world: w, plan, dir } = await igbPlan();
    assert.deepEqual(await driverctlCommands(plan, w.sim, dir), [
      "# PF 0000:04:00.0 (8086:10c9), plugin igb: driverctl overrides for vfbroker's bindings",
      '# set-override unbinds the PF first (even with --noprobe), which removes its VFs: bring the PF down around it',
      'vfbroker pf down 0000:04:00.0',
      'driverctl set-override 0000:04:00.0 vfio-pci',
      'vfbroker pf up 0000:04:00.0',
      '# VFs 0-2, 4-6: no override; vfio-pci sets driver_override=vfio-pci on each VF of its PF as the VF is created',
      '# VF 3: once the PF is up (set-override needs the VF to exist); driverctl then binds each VF whenever it is created',
      'driverctl set-override 0000:04:10.6 igbvf',
    ]);
  });

  it('says which overrides driverctl keeps already instead of repeating them', async () => {
    const { world: w, plan, dir } = await igbPlan();
    await mkdir(dir);
    await writeFile(path.join(dir, `pci-${PF}`), 'vfio-pci\n');
    await writeFile(path.join(dir, `pci-${VF3}`), 'igbvf\n');
    const lines = await driverctlCommands(plan, w.sim, dir);
    assert.deepEqual(lines.slice(1, 2), [`# PF ${PF}: kept on vfio-pci by ${dir}/pci-${PF}`]);
    assert.deepEqual(lines.slice(-1), [`# VF 3 (${VF3}): kept on igbvf by ${dir}/pci-${VF3}`]);
    assert.ok(!lines.some((l) => l.startsWith('driverctl ') || l.startsWith('vfbroker ')));
  });

  it('leaves a PF on its kernel driver alone and pins each VF it moves', async () => {
    world = await makeWorld({ name: 'connectx5.yaml' });
    plugin = mlx5.create();
    const cx5 = '0000:5e:00.0' as PciAddress;
    installMellanoxTools(world, cx5);
    const config: PfConfig = {
      address: cx5,
      vfs: 4,
      options: { vfDriver: 'vfio-pci' },
      vfDrivers: [{ index: 1, driver: 'mlx5_core' }],
    };
    const { plan } = await pfUp(world.ctx, plugin, config, null, { dryRun: true });
    assert.deepEqual(await driverctlCommands(plan, world.sim, null), [
      "# PF 0000:5e:00.0 (15b3:1017), plugin mlx5: driverctl overrides for vfbroker's bindings",
      '# PF 0000:5e:00.0: stays on mlx5_core, which binds it by PCI ID; no override',
      '# VFs 0-3: once the PF is up (set-override needs the VF to exist); driverctl then binds each VF whenever it is created',
      'driverctl set-override 0000:5e:00.2 vfio-pci',
      'driverctl set-override 0000:5e:00.3 mlx5_core',
      'driverctl set-override 0000:5e:00.4 vfio-pci',
      'driverctl set-override 0000:5e:00.5 vfio-pci',
    ]);
  });
});
