/**
 * The igb plugin on a simulated dual-port 82576 (test/fixtures/hosts/igb-82576.yaml): PF to
 * vfio-pci, 7 VFs, a DPDK PF application started with the token, and everything that can go wrong
 * on the way.
 */
import assert from 'node:assert/strict';
import { stat, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import igb from '../../../plugins/igb/index.js';
import type { PciAddress } from '../../../src/pci/address.js';
import type { PfConfig, Plugin } from '../../../src/plugins/contract.js';
import { pfDown, pfStatus, pfUp, restartDriver, rotateLive } from '../../../src/plugins/lifecycle/pf.js';
import { renderPlan } from '../../../src/plugins/plan.js';
import { renderStatus } from '../../../src/plugins/status.js';
import { installDpdkApp, type DpdkBehaviour } from './support/programs.js';
import {
  OTHER_TOKEN,
  TOKEN,
  countingWrites,
  losingLastVf,
  makeWorld,
  setVfioParameter,
  sysfsState,
  vfOpens,
  type World,
} from './support/world.js';
import { rejection } from '../../support/rejection.js';

const PF = '0000:04:00.0' as PciAddress;
const APP = '/usr/bin/dpdk-pf-app';

function config(vfs: number, options: Record<string, unknown> = {}): PfConfig {
  return {
    address: PF,
    vfs,
    options: { command: [APP, '-l', '0-1', '-a', PF], readyPattern: 'link up', ...options },
  };
}

describe('igb plugin', () => {
  let world: World;
  let plugin: Plugin;
  let app: DpdkBehaviour;
  beforeEach(async () => {
    world = await makeWorld({ name: 'igb-82576.yaml' });
    plugin = igb.create();
    app = installDpdkApp(world, 'dpdk-pf-app');
  });
  afterEach(async () => {
    await plugin.close();
    world.assertNoTokenLogged();
    await world.cleanup();
  });

  it('plans the whole way up from a PF on the kernel igb driver', async () => {
    const { plan, status } = await pfUp(world.ctx, plugin, config(7), null, { dryRun: true });
    assert.equal(status, null);
    assert.equal(
      renderPlan(plan),
      [
        'PF 0000:04:00.0 (8086:10c9), plugin igb, 7 VFs: 4 steps',
        '  1. bind the PF to vfio-pci (now igb)',
        '  2. enable 7 VFs: sriov_numvfs 0 → 7',
        '  3. bind the 7 new VFs to vfio-pci',
        '  4. start the PF driver dpdk-pf-app (DPDK PF application, token via argv)',
      ].join('\n'),
    );
    assert.equal(plan.drain.required, false);
    assert.equal(await world.sim.driver(PF), 'igb', 'a dry run changes nothing');
  });

  it('brings the PF up: VFs open with the token only', async () => {
    const { status } = await pfUp(world.ctx, plugin, config(7), TOKEN, { dryRun: false });
    assert.equal(status?.state, 'up');
    assert.equal(await world.sim.driver(PF), 'vfio-pci');
    const vfs = await world.sim.virtfns(PF);
    assert.equal(vfs.length, 7);
    for (const vf of vfs) assert.equal(await world.sim.driver(vf), 'vfio-pci');
    const vf0 = vfs[0] as PciAddress;
    assert.equal(await vfOpens(world.sim, vf0, TOKEN), true);
    assert.equal(await vfOpens(world.sim, vf0, OTHER_TOKEN), 'EACCES');
    assert.equal(await vfOpens(world.sim, vf0, null), 'EACCES');
    const [spawned] = world.runner.callsOf('dpdk-pf-app');
    assert.deepEqual(spawned?.argv, [APP, '-l', '0-1', '-a', PF, `--vfio-vf-token=${TOKEN}`]);
    assert.equal(spawned?.rendered, `${APP} -l 0-1 -a 0000:04:00.0 --vfio-vf-token=<redacted>`);
  });

  it('puts the token argument before "--", where DPDK EAL options end', async () => {
    await pfUp(world.ctx, plugin, config(2, { command: [APP, '-a', PF, '--', '-i'] }), TOKEN, {
      dryRun: false,
    });
    assert.deepEqual(world.runner.callsOf('dpdk-pf-app')[0]?.argv, [
      APP,
      '-a',
      PF,
      `--vfio-vf-token=${TOKEN}`,
      '--',
      '-i',
    ]);
  });

  it('up twice is the same state, with no second write or start', async () => {
    await pfUp(world.ctx, plugin, config(7), TOKEN, { dryRun: false });
    const before = sysfsState(world.sim);
    const counting = countingWrites(world.sim);
    const again = await pfUp(world.withSysfs(counting.sysfs), plugin, config(7), TOKEN, { dryRun: false });
    assert.deepEqual(again.plan.steps, []);
    assert.equal(
      renderPlan(again.plan),
      'PF 0000:04:00.0 (8086:10c9), plugin igb, 7 VFs: up to date, nothing to change',
    );
    assert.equal(counting.writes(), 0);
    assert.deepEqual(sysfsState(world.sim), before);
    assert.equal(world.runner.callsOf('dpdk-pf-app').length, 1);
  });

  it('refuses 8 VFs with the reason, although the 82576 reports 8', async () => {
    const err = await rejection(pfUp(world.ctx, plugin, config(8), TOKEN, { dryRun: false }));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(
      err.message,
      'PF 0000:04:00.0 (8086:10c9): 8 VFs requested, at most 7: the 82576 has 8 queue pools and its PF driver keeps one for itself, so the kernel igb driver enables at most 7 VFs (igb_main.c lowers sriov_totalvfs to 7 while bound; the kernel refuses 8 with ERANGE)',
    );
    assert.equal(
      err.hint,
      'ask for at most 7 VFs of PF 0000:04:00.0 (vfs: in /etc/vfbroker/broker.yaml, or SetNumVfs)',
    );
    assert.equal(await world.sim.driver(PF), 'igb', 'nothing changed');
  });

  it('says how to enable SR-IOV in vfio-pci when it is off', async () => {
    setVfioParameter(world.sim, 'enable_sriov', 'N');
    const err = await rejection(pfUp(world.ctx, plugin, config(7), TOKEN, { dryRun: false }));
    assert.equal(
      err.message,
      'vfio-pci is not set up for PF 0000:04:00.0: enable_sriov is off (VFs of a PF on vfio-pci need it); run `echo Y > /sys/module/vfio_pci/parameters/enable_sriov` and add `options vfio-pci enable_sriov=1` to /etc/modprobe.d/vfbroker-vfio-pci.conf to keep it across reboots',
    );
  });

  it('says how to load vfio-pci when it is not loaded', async () => {
    const state = world.sim.snapshot();
    delete state.modules['vfio_pci'];
    world.sim.restore(state);
    const err = await rejection(pfUp(world.ctx, plugin, config(7), TOKEN, { dryRun: false }));
    assert.equal(
      err.message,
      'vfio-pci is not loaded, PF 0000:04:00.0 needs it: run `modprobe vfio-pci enable_sriov=1` and add `options vfio-pci enable_sriov=1` to /etc/modprobe.d/vfbroker-vfio-pci.conf to keep it across reboots',
    );
  });

  it('takes the PF from igb with its kernel VFs, saying guests must drain', async () => {
    await world.sim.writeAttribute(PF, 'sriov_numvfs', '2');
    const { plan } = await pfUp(world.ctx, plugin, config(3), TOKEN, { dryRun: true });
    assert.deepEqual(
      plan.steps.map((s) => s.kind),
      ['remove-vfs', 'bind-pf', 'enable-vfs', 'bind-vfs', 'start-driver'],
    );
    assert.deepEqual(plan.drain, {
      required: true,
      reason: 'its 2 VFs are removed (the PF moves from igb to vfio-pci)',
    });
    const { status } = await pfUp(world.ctx, plugin, config(3), TOKEN, { dryRun: false });
    assert.equal(status?.state, 'up');
  });

  it('reports a PF that is not there as down, and refuses to bring it up', async () => {
    const missing: PfConfig = { ...config(2), address: '0000:09:00.0' as PciAddress };
    const status = await pfStatus(world.ctx, plugin, missing);
    assert.deepEqual(
      [status.state, status.deviceId, status.steps[0]?.detail],
      ['down', null, `PF not present (${world.sim.description})`],
    );
    const err = await rejection(pfUp(world.ctx, plugin, missing, TOKEN, { dryRun: false }));
    assert.equal(err.code, 'NOT_FOUND');
    assert.equal(err.message, `PF 0000:09:00.0 does not exist (${world.sim.description})`);
  });

  it('moves a VF that an administrator bound elsewhere back to vfio-pci', async () => {
    await pfUp(world.ctx, plugin, config(3), TOKEN, { dryRun: false });
    const vf1 = (await world.sim.virtfns(PF))[1] as PciAddress;
    await world.sim.writeAttribute(vf1, 'driver_override', 'igbvf');
    await world.sim.unbind(vf1);
    await world.sim.probe(vf1);
    assert.equal(await world.sim.driver(vf1), 'igbvf');

    const status = await pfStatus(world.ctx, plugin, config(3));
    assert.equal(status.state, 'degraded');
    assert.deepEqual(
      status.steps.find((s) => s.step === 'vfs-bound'),
      { step: 'vfs-bound', done: false, detail: `not on vfio-pci: VF 1 ${vf1} (igbvf)` },
    );

    const { plan } = await pfUp(world.ctx, plugin, config(3), TOKEN, { dryRun: false });
    assert.deepEqual(plan.steps, [{ kind: 'bind-vfs', driver: 'vfio-pci', count: 1, addresses: [vf1] }]);
    assert.equal(await world.sim.driver(vf1), 'vfio-pci');
  });

  it('recovers from an up that failed at the PF driver', async () => {
    app.failStart = true;
    const err = await rejection(pfUp(world.ctx, plugin, config(4), TOKEN, { dryRun: false }));
    assert.equal(err.code, 'UNAVAILABLE');
    assert.equal(
      err.message,
      `\`${APP} -l 0-1 -a 0000:04:00.0 --vfio-vf-token=<redacted>\` exited (status 1) before a line matching readyPattern`,
    );

    const half = await pfStatus(world.ctx, plugin, config(4));
    assert.equal(half.state, 'degraded');
    assert.deepEqual(
      half.steps.map((s) => [s.step, s.done]),
      [
        ['pf-bound', true],
        ['vfs-enabled', true],
        ['vfs-bound', true],
        ['driver-running', false],
      ],
    );
    assert.equal(renderStatus(half).split('\n')[0], 'PF 0000:04:00.0 (8086:10c9), plugin igb: degraded');

    app.failStart = false;
    const { plan, status } = await pfUp(world.ctx, plugin, config(4), TOKEN, { dryRun: false });
    assert.deepEqual(
      plan.steps.map((s) => s.kind),
      ['start-driver'],
    );
    assert.equal(status?.state, 'up');
  });

  it('stops when VFs are missing after enabling them, and recreates them on the next up', async () => {
    const flaky = world.withSysfs(losingLastVf(world.sim));
    const err = await rejection(pfUp(flaky, plugin, config(4), TOKEN, { dryRun: false }));
    assert.equal(err.code, 'KERNEL_REFUSED');
    assert.equal(err.message, 'PF 0000:04:00.0: sriov_numvfs is 4 but 3 VFs appeared (virtfn links)');
    const half = await pfStatus(flaky, plugin, config(4));
    assert.deepEqual(
      half.steps.find((s) => s.step === 'vfs-enabled'),
      { step: 'vfs-enabled', done: false, detail: 'sriov_numvfs 4 of 4 wanted, 3 VFs present' },
    );

    const { plan } = await pfUp(world.withSysfs(losingLastVf(world.sim)), plugin, config(4), TOKEN, {
      dryRun: true,
    });
    assert.deepEqual(plan.steps[0], {
      kind: 'remove-vfs',
      count: 4,
      reason: 'only 3 of them appeared, so they are created again',
    });
    const healed = await pfUp(world.ctx, plugin, config(4), TOKEN, { dryRun: false });
    assert.equal(healed.status?.state, 'up');
  });

  it('notices a PF driver crash, reports it, and restarts it on the next up', async () => {
    await pfUp(world.ctx, plugin, config(2), TOKEN, { dryRun: false });
    const [proc] = world.runner.processes;
    proc?.exit(null, 'SIGSEGV');

    const status = await pfStatus(world.ctx, plugin, config(2));
    assert.equal(status.state, 'degraded');
    assert.equal(status.driver?.running, false);
    assert.equal(status.driver?.lastExit?.signal, 'SIGSEGV');
    assert.match(
      status.steps.at(-1)?.detail ?? '',
      /^DPDK PF application exited unexpectedly \(killed by SIGSEGV\) at \d{4}-/,
    );
    const warning = world.logs.records().find((r) => r['level'] === 40);
    assert.equal(warning?.['msg'], 'DPDK PF application exited unexpectedly (killed by SIGSEGV)');
    assert.equal(warning?.['plugin'], 'igb');
    assert.equal(warning?.['pf'], PF);

    const { plan, status: after } = await pfUp(world.ctx, plugin, config(2), TOKEN, { dryRun: false });
    assert.deepEqual(
      plan.steps.map((s) => s.kind),
      ['start-driver'],
    );
    assert.equal(after?.driver?.lastExit, null);
  });

  it('hands the token over in a 0600 runtime file when told to, and removes it on down', async () => {
    await pfUp(world.ctx, plugin, config(2, { tokenVia: 'file' }), TOKEN, { dryRun: false });
    const file = path.join(world.ctx.runtimeDirectory, `${PF}.vf-token`);
    assert.equal(await readFile(file, 'utf8'), `${TOKEN}\n`);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const argv = world.runner.callsOf('dpdk-pf-app')[0]?.argv ?? [];
    assert.equal(argv.at(-1), `--vfio-vf-token-file=${file}`);
    assert.ok(!argv.join(' ').includes(TOKEN));
    assert.equal(await vfOpens(world.sim, (await world.sim.virtfns(PF))[0] as PciAddress, TOKEN), true);

    await pfDown(world.ctx, plugin, config(2, { tokenVia: 'file' }));
    await assert.rejects(stat(file), { code: 'ENOENT' });
  });

  it('down stops the driver and removes the VFs; release gives the PF back to igb', async () => {
    await pfUp(world.ctx, plugin, config(3), TOKEN, { dryRun: false });
    const down = await pfDown(world.ctx, plugin, config(3));
    assert.equal(down.state, 'down');
    assert.equal(await world.sim.readAttribute(PF, 'sriov_numvfs'), '0');
    assert.equal(await world.sim.driver(PF), 'vfio-pci');
    assert.equal(world.runner.processes[0]?.exitStatus?.signal, 'SIGTERM');
    assert.equal((await pfDown(world.ctx, plugin, config(3))).state, 'down', 'down twice is fine');

    await pfDown(world.ctx, plugin, config(3), { release: true });
    assert.equal(await world.sim.driver(PF), 'igb');
    assert.equal(await world.sim.readAttribute(PF, 'driver_override'), '(null)');
  });

  it('drain rotation restarts the application with the new token; live rotation is refused', async () => {
    await pfUp(world.ctx, plugin, config(2), TOKEN, { dryRun: false });
    const vf0 = (await world.sim.virtfns(PF))[0] as PciAddress;
    await restartDriver(world.ctx, plugin, config(2), OTHER_TOKEN);
    assert.equal(await vfOpens(world.sim, vf0, OTHER_TOKEN), true);
    assert.equal(await vfOpens(world.sim, vf0, TOKEN), 'EACCES');
    const err = await rejection(rotateLive(world.ctx, plugin, config(2), TOKEN));
    assert.equal(err.message, 'PF 0000:04:00.0: plugin igb rotates by drain, not live');
  });

  it('refuses a token that is not a UUID without echoing it, and an up without a token', async () => {
    const bad = `${TOKEN}x`;
    const err = await rejection(pfUp(world.ctx, plugin, config(2), bad, { dryRun: false }));
    assert.equal(err.message, 'the token for PF 0000:04:00.0 is not a UUID');
    const none = await rejection(pfUp(world.ctx, plugin, config(2), null, { dryRun: false }));
    assert.equal(none.message, 'PF 0000:04:00.0 (plugin igb) needs a token');
  });

  it('names the plugin, the PF and the key of a bad option', async () => {
    const typo = await rejection(
      pfUp(world.ctx, plugin, config(2, { tokenvia: 'file' }), TOKEN, { dryRun: true }),
    );
    assert.equal(typo.code, 'CONFIG_INVALID');
    assert.equal(
      typo.message,
      'plugin igb, PF 0000:04:00.0: options: unknown key "tokenvia" (did you mean "tokenVia"?)',
    );
    const relative = await rejection(
      pfUp(world.ctx, plugin, config(2, { command: ['./app'] }), TOKEN, { dryRun: true }),
    );
    assert.equal(
      relative.message,
      'plugin igb, PF 0000:04:00.0: options.command: the first element must be an absolute path or a bare command name',
    );
  });
});
