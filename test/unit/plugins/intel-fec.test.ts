/**
 * The intel-fec plugin on simulated ACC100 and N3000 hosts, with a fake pf_bb_config that opens the
 * PF through the simulator's VFIO and leaves a daemon behind, as the real one does.
 */
import assert from 'node:assert/strict';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import intelFec from '../../../plugins/intel-fec/index.js';
import type { PciAddress } from '../../../src/pci/address.js';
import type { PfConfig, Plugin } from '../../../src/plugins/contract.js';
import { pfDown, pfStatus, pfUp, restartDriver } from '../../../src/plugins/lifecycle/pf.js';
import { endDaemon, installPfBbConfig, type FecBehaviour, type FecDaemon } from './support/programs.js';
import {
  OTHER_TOKEN,
  TOKEN,
  makeWorld,
  setVfioParameter,
  sysfsState,
  vfOpens,
  type World,
} from './support/world.js';
import { rejection } from '../../support/rejection.js';

const ACC100 = '0000:b1:00.0' as PciAddress;
const N3000 = '0000:1f:00.0' as PciAddress;
const CFG = '/etc/vfbroker/acc100_config_vf_5g.cfg';

interface Fixture {
  world: World;
  plugin: Plugin;
  fec: { behaviour: FecBehaviour; daemons: Map<string, FecDaemon> };
  config(pf: PciAddress, vfs: number, extra?: Record<string, unknown>): PfConfig;
}

async function setUp(host: { name: string } | { yaml: string }): Promise<Fixture> {
  const world = await makeWorld(host);
  const dirs = { logs: path.join(world.dir, 'log'), sockets: path.join(world.dir, 'sock') };
  await mkdir(dirs.logs);
  await mkdir(dirs.sockets);
  return {
    world,
    plugin: intelFec.create(),
    fec: installPfBbConfig(world, dirs),
    config: (pf, vfs, extra = {}) => ({
      address: pf,
      vfs,
      options: { config: CFG, logDirectory: dirs.logs, socketDirectory: dirs.sockets, ...extra },
    }),
  };
}

describe('intel-fec plugin', () => {
  let f: Fixture;
  afterEach(async () => {
    await f.plugin.close();
    f.world.assertNoTokenLogged();
    await f.world.cleanup();
  });

  it('runs pf_bb_config with -p, -c and -v before creating the VFs', async () => {
    f = await setUp({ name: 'acc100.yaml' });
    const { plan, status } = await pfUp(f.world.ctx, f.plugin, f.config(ACC100, 16), TOKEN, {
      dryRun: false,
    });
    assert.deepEqual(
      plan.steps.map((s) => s.kind),
      ['bind-pf', 'start-driver', 'enable-vfs', 'bind-vfs'],
    );
    assert.equal(status?.state, 'up');
    const [run] = f.world.runner.callsOf('pf_bb_config');
    assert.deepEqual(run?.argv, ['pf_bb_config', 'ACC100', '-p', ACC100, '-c', CFG, '-v', TOKEN]);
    assert.equal(run?.rendered, `pf_bb_config ACC100 -p 0000:b1:00.0 -c ${CFG} -v <redacted>`);
    const vfs = await f.world.sim.virtfns(ACC100);
    assert.equal(vfs.length, 16);
    assert.equal(await vfOpens(f.world.sim, vfs[15] as PciAddress, TOKEN), true);
    assert.equal(await vfOpens(f.world.sim, vfs[15] as PciAddress, OTHER_TOKEN), 'EACCES');
    assert.match(status?.driver?.detail ?? '', /^pf_bb_config daemon pid \d+$/);
  });

  it('up twice starts no second pf_bb_config and changes nothing', async () => {
    f = await setUp({ name: 'acc100.yaml' });
    await pfUp(f.world.ctx, f.plugin, f.config(ACC100, 4), TOKEN, { dryRun: false });
    const before = sysfsState(f.world.sim);
    const { plan } = await pfUp(f.world.ctx, f.plugin, f.config(ACC100, 4), TOKEN, { dryRun: false });
    assert.deepEqual(plan.steps, []);
    assert.deepEqual(sysfsState(f.world.sim), before);
    assert.equal(f.world.runner.callsOf('pf_bb_config').length, 1);
  });

  it('requires disable_idle_d3 for the ACC100 and says how to set it', async () => {
    f = await setUp({ name: 'acc100.yaml' });
    setVfioParameter(f.world.sim, 'disable_idle_d3', 'N');
    const err = await rejection(pfUp(f.world.ctx, f.plugin, f.config(ACC100, 4), TOKEN, { dryRun: false }));
    assert.equal(
      err.message,
      'vfio-pci is not set up for PF 0000:b1:00.0: disable_idle_d3 is off (the ACC100 loses its pf_bb_config configuration when vfio-pci lets it drop to D3 while idle); run `echo Y > /sys/module/vfio_pci/parameters/disable_idle_d3` and add `options vfio-pci enable_sriov=1 disable_idle_d3=1` to /etc/modprobe.d/vfbroker-vfio-pci.conf to keep it across reboots',
    );
    assert.equal(await f.world.sim.driver(ACC100), null, 'nothing changed');
  });

  it('configures the N3000 5G NR function as FPGA_5GNR, up to its 8 VFs', async () => {
    f = await setUp({ name: 'n3000.yaml' });
    await pfUp(f.world.ctx, f.plugin, f.config(N3000, 8), TOKEN, { dryRun: false });
    assert.equal(f.world.runner.callsOf('pf_bb_config')[0]?.argv[1], 'FPGA_5GNR');
    const err = await rejection(pfUp(f.world.ctx, f.plugin, f.config(N3000, 9), TOKEN, { dryRun: true }));
    assert.equal(
      err.message,
      'PF 0000:1f:00.0 (8086:0d8f): 9 VFs requested, the device offers 8 (sriov_totalvfs)',
    );
  });

  it('reports a failed configuration from the log, and finishes on the next up', async () => {
    f = await setUp({ name: 'acc100.yaml' });
    f.fec.behaviour.outcome = 'config-fails';
    const err = await rejection(pfUp(f.world.ctx, f.plugin, f.config(ACC100, 2), TOKEN, { dryRun: false }));
    assert.equal(err.code, 'UNAVAILABLE');
    assert.equal(
      err.message,
      'pf_bb_config could not configure PF 0000:b1:00.0: Mon Nov 24 01:00:00 2025:ERR:Queue Groups exceed the device limit',
    );
    const half = await pfStatus(f.world.ctx, f.plugin, f.config(ACC100, 2));
    assert.deepEqual(
      half.steps.map((s) => [s.step, s.done]),
      [
        ['pf-bound', true],
        ['vfs-enabled', false],
        ['vfs-bound', false],
        ['driver-running', false],
      ],
    );
    f.fec.behaviour.outcome = 'ok';
    const { plan, status } = await pfUp(f.world.ctx, f.plugin, f.config(ACC100, 2), TOKEN, { dryRun: false });
    assert.deepEqual(
      plan.steps.map((s) => s.kind),
      ['start-driver', 'enable-vfs', 'bind-vfs'],
    );
    assert.equal(status?.state, 'up');
  });

  it('fails when pf_bb_config reports success but leaves no daemon', async () => {
    f = await setUp({ name: 'acc100.yaml' });
    f.fec.behaviour.outcome = 'no-daemon';
    const err = await rejection(pfUp(f.world.ctx, f.plugin, f.config(ACC100, 2), TOKEN, { dryRun: false }));
    assert.equal(err.message, 'pf_bb_config configured PF 0000:b1:00.0 but its daemon is not running');
  });

  it('notices a crashed daemon with its stale socket, and restarts it keeping the VFs', async () => {
    f = await setUp({ name: 'acc100.yaml' });
    await pfUp(f.world.ctx, f.plugin, f.config(ACC100, 2), TOKEN, { dryRun: false });
    endDaemon(f.world, f.fec.daemons, ACC100, { removeSocket: false });
    const status = await pfStatus(f.world.ctx, f.plugin, f.config(ACC100, 2));
    assert.equal(status.state, 'degraded');
    assert.match(
      status.steps.at(-1)?.detail ?? '',
      /^pf_bb_config is not running \(stale command socket .*pf_bb_config\.0000:b1:00\.0\.sock\)$/,
    );
    const { plan } = await pfUp(f.world.ctx, f.plugin, f.config(ACC100, 2), TOKEN, { dryRun: false });
    assert.deepEqual(
      plan.steps.map((s) => s.kind),
      ['start-driver'],
    );
    assert.equal(plan.drain.required, false);
  });

  it('down stops the daemon with SIGTERM and removes the VFs', async () => {
    f = await setUp({ name: 'acc100.yaml' });
    const config = f.config(ACC100, 2);
    await pfUp(f.world.ctx, f.plugin, config, TOKEN, { dryRun: false });
    const socket = path.join(f.world.dir, 'sock', `pf_bb_config.${ACC100}.sock`);
    await stat(socket);
    const down = await pfDown(f.world.ctx, f.plugin, config);
    assert.equal(down.state, 'down');
    assert.equal(f.fec.daemons.size, 0);
    await assert.rejects(stat(socket), { code: 'ENOENT' });
    assert.equal(await f.world.sim.readAttribute(ACC100, 'sriov_numvfs'), '0');
  });

  it('drain rotation restarts pf_bb_config with the new token', async () => {
    f = await setUp({ name: 'acc100.yaml' });
    await pfUp(f.world.ctx, f.plugin, f.config(ACC100, 1), TOKEN, { dryRun: false });
    const vf = (await f.world.sim.virtfns(ACC100))[0] as PciAddress;
    await restartDriver(f.world.ctx, f.plugin, f.config(ACC100, 1), OTHER_TOKEN);
    assert.equal(await vfOpens(f.world.sim, vf, OTHER_TOKEN), true);
    assert.equal(await vfOpens(f.world.sim, vf, TOKEN), 'EACCES');
  });

  it('needs the FFT table for VRB1, and refuses FPGA_LTE, whose token pf_bb_config cannot set', async () => {
    f = await setUp({
      yaml: [
        'drivers: [vfio-pci]',
        'modules: { vfio_pci: { enable_sriov: Y } }',
        'devices:',
        '  - { address: "0000:f7:00.0", id: "8086:57c0", class: "120000", iommuGroup: 7, sriov: { totalVfs: 16, offset: 1, stride: 1, vfDevice: "57c1" } }',
        '  - { address: "0000:1d:00.0", id: "1172:5052", class: "120000", iommuGroup: 8, sriov: { totalVfs: 8, offset: 1, stride: 1, vfDevice: "5050" } }',
      ].join('\n'),
    });
    const vrb1 = '0000:f7:00.0' as PciAddress;
    const lut = await rejection(pfUp(f.world.ctx, f.plugin, f.config(vrb1, 2), TOKEN, { dryRun: true }));
    assert.equal(lut.message, 'plugin intel-fec, PF 0000:f7:00.0: options.fftLut is required for VRB1');
    await pfUp(f.world.ctx, f.plugin, f.config(vrb1, 2, { fftLut: '/opt/vrb1/fft.bin' }), TOKEN, {
      dryRun: false,
    });
    assert.deepEqual(f.world.runner.callsOf('pf_bb_config')[0]?.argv, [
      'pf_bb_config',
      'VRB1',
      '-p',
      vrb1,
      '-c',
      CFG,
      '-v',
      TOKEN,
      '-f',
      '/opt/vrb1/fft.bin',
    ]);

    const lte = await rejection(
      pfUp(f.world.ctx, f.plugin, f.config('0000:1d:00.0' as PciAddress, 2), TOKEN, { dryRun: true }),
    );
    assert.equal(
      lte.message,
      'PF 0000:1d:00.0 (Intel FPGA PAC N3000 (LTE FEC)): pf_bb_config does not open FPGA_LTE through VFIO, so it cannot set a VF token and the VFs would stay unusable on vfio-pci',
    );
  });
});
