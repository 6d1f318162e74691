/**
 * The CLI and the broker as a user meets them: `vfbroker serve` as a child process on a private
 * bus with a simulated host, and `vfbroker …` commands run against it. Asserts stdout, stderr and
 * exit statuses.
 */
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDbusDaemon, type TestBus } from '../../support/dbus-daemon.js';
import { repoPath } from '../../support/repo.js';

const CLI = join(repoPath(), 'dist', 'src', 'cli', 'main.js');
const cliPath = (): string => process.env['VFBROKER_CLI'] ?? CLI;
const GUEST = '6f1c2d3e-8a4b-4c5d-9e6f-0123456789ab';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function vfbroker(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath(), ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('vfbroker CLI against a running broker', () => {
  let dir: string;
  let bus: TestBus;
  let broker: ChildProcess;
  let brokerLog = '';
  const withBus = (...args: string[]): Promise<Run> => vfbroker(['--bus', bus.address, ...args]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfb-cli-'));
    bus = await startDbusDaemon();
    await writeFile(
      join(dir, 'broker.yaml'),
      [
        'hostId: cli-test',
        'store: { type: file }',
        `sysfs: { simulator: { fixture: ${repoPath('etc/vfbroker/simulated-host.yaml')}, stateFile: ${join(dir, 'host.json')} } }`,
        `stateDirectory: ${join(dir, 'state')}`,
        `runtimeDirectory: ${join(dir, 'run')}`,
        `dbus: { busAddress: "${bus.address}" }`,
        'pfs:',
        '  - address: "0000:5e:00.0"',
        '    vfs: 4',
      ].join('\n'),
    );
    await writeFile(
      join(dir, 'policy.yaml'),
      [
        'rules:',
        `  - guest: ${GUEST}`,
        '    name: vdu-1',
        '    vfs:',
        '      - pf: 0000:5e:00.0',
        "        vfs: ['0-1']",
        'owners:',
        `  - guest: ${GUEST}`,
        '    pf: 0000:5e:00.0',
      ].join('\n'),
    );
    broker = spawn(
      process.execPath,
      [cliPath(), 'serve', '--config', join(dir, 'broker.yaml'), '--policy', join(dir, 'policy.yaml')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    broker.stdout?.on('data', (d: Buffer) => (brokerLog += d.toString()));
    broker.stderr?.on('data', (d: Buffer) => (brokerLog += d.toString()));
    for (let i = 0; i < 100 && !brokerLog.includes('broker ready'); i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok(brokerLog.includes('broker ready'), `broker did not start:\n${brokerLog}`);
  });

  after(async () => {
    if (broker.exitCode === null) {
      const exited = new Promise((r) => broker.once('exit', r));
      broker.kill('SIGTERM');
      await exited;
    }
    await bus.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists PFs in words and as JSON', async () => {
    const text = await withBus('token', 'status');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^0000:5e:00\.0 {2}mlx5 +up +no token needed, rotation none, 0 lease\(s\)$/m);
    const json = await withBus('--json', 'pf', 'status');
    assert.equal(json.code, 0);
    const parsed = JSON.parse(json.stdout) as { pfs: { address: string; numVfs: number }[] };
    assert.deepEqual(
      parsed.pfs.map((p) => [p.address, p.numVfs]),
      [['0000:5e:00.0', 4]],
    );
  });

  it('shows a PF’s life-cycle steps and a dry-run plan that changes nothing', async () => {
    const status = await withBus('pf', 'status', '5e:00.0');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^PF 0000:5e:00\.0 \(15b3:1017\), plugin mlx5: up$/m);
    const plan = await withBus('pf', 'up', '0000:5e:00.0', '--dry-run');
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /up to date, nothing to change/);
  });

  it('answers a token request for a PF without tokens with NOT_FOUND and exit 66', async () => {
    const r = await withBus('token', 'get', '--vf', '0000:5e:00.2');
    assert.equal(r.code, 66);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      /^vfbroker: PF 0000:5e:00\.0 \(plugin mlx5\) has no token: its VFs open without one\n {2}hint: /,
    );
  });

  it('brings a PF down and up again', async () => {
    const down = await withBus('pf', 'down', '0000:5e:00.0');
    assert.equal(down.code, 0, down.stderr);
    assert.match((await withBus('token', 'status')).stdout, /0000:5e:00\.0 {2}mlx5 +down/);
    const up = await withBus('pf', 'up', '0000:5e:00.0');
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /enable 4 VFs/);
    assert.match(up.stdout, /→ 0000:5e:00\.0 is up$/m);
  });

  it('explains policy decisions with the rule, and exits 77 on a denial', async () => {
    const files = ['--config', join(dir, 'broker.yaml'), '--policy', join(dir, 'policy.yaml')];
    const vf1 = await vfbroker([...files, 'policy', 'check', '--guest', GUEST, '--vf', '0000:5e:00.3']);
    assert.equal(vf1.code, 0, vf1.stderr);
    assert.match(vf1.stdout, /VF 0000:5e:00\.3: allowed — allowed by rules\[0\] in .*policy\.yaml:2$/m);
    const vf3 = await vfbroker([...files, 'policy', 'check', '--guest', GUEST, '--vf', '0000:5e:00.5']);
    assert.equal(vf3.code, 77);
    assert.match(vf3.stdout, /denied — no rule grants guest/);
  });

  it('says whether a guest may set a PF’s VF count, and refuses --vf with --pf', async () => {
    const files = ['--policy', join(dir, 'policy.yaml')];
    const owner = await vfbroker([
      ...files,
      '--json',
      'policy',
      'check',
      '--guest',
      GUEST,
      '--pf',
      '5e:00.0',
    ]);
    assert.equal(owner.code, 0, owner.stderr);
    assert.deepEqual(JSON.parse(owner.stdout), {
      pf: '0000:5e:00.0',
      subject: `guest ${GUEST}`,
      allowed: true,
      reason: `allowed by owners[0] in ${join(dir, 'policy.yaml')}:8`,
      rule: { list: 'owners', index: 0, file: join(dir, 'policy.yaml'), line: 8 },
    });
    const app = await vfbroker([...files, 'policy', 'check', '--uid', '1001', '--pf', '0000:5e:00.0']);
    assert.equal(app.code, 77);
    assert.equal(
      app.stdout,
      'uid 1001, VF count of PF 0000:5e:00.0: denied — no owner rule lets uid 1001 (outside any systemd unit) set the VF count of PF 0000:5e:00.0 (default deny)\n',
    );
    const both = await vfbroker([
      ...files,
      'policy',
      'check',
      '--guest',
      GUEST,
      '--pf',
      '0000:5e:00.0',
      '--vf',
      '0000:5e:00.3',
    ]);
    assert.equal(both.code, 64);
    assert.match(both.stderr, /^vfbroker: give one of --vf and --pf\n/);
  });

  it('turns usage mistakes into one line and exit 64', async () => {
    const r = await vfbroker(['pf', 'up', 'not-an-address']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /^vfbroker: invalid PCI address "not-an-address": /);
    const unknown = await vfbroker(['frobnicate']);
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /^vfbroker: unknown command 'frobnicate'/);
  });

  it('says so when the broker is not there', async () => {
    const r = await vfbroker(['--bus', `unix:path=${join(dir, 'no-such-bus')}`, 'token', 'status']);
    assert.equal(r.code, 69);
    assert.match(r.stderr, /^vfbroker: .*\n {2}hint: /);
  });
});

describe('vfbroker serve when the bus goes away', () => {
  it('stops and exits 1, so systemd restarts it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfb-busloss-'));
    const bus = await startDbusDaemon();
    try {
      await writeFile(
        join(dir, 'broker.yaml'),
        [
          'store: { type: file }',
          `sysfs: { simulator: { fixture: ${repoPath('etc/vfbroker/simulated-host.yaml')}, stateFile: ${join(dir, 'host.json')} } }`,
          `stateDirectory: ${join(dir, 'state')}`,
          `runtimeDirectory: ${join(dir, 'run')}`,
          `dbus: { busAddress: "${bus.address}" }`,
          'pfs: []',
        ].join('\n'),
      );
      await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
      const broker = spawn(
        process.execPath,
        [cliPath(), 'serve', '--config', join(dir, 'broker.yaml'), '--policy', join(dir, 'policy.yaml')],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let log = '';
      broker.stdout?.on('data', (d: Buffer) => (log += d.toString()));
      for (let i = 0; i < 100 && !log.includes('broker ready'); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.ok(log.includes('broker ready'), log);
      const exited = new Promise<number | null>((r) => broker.once('exit', r));
      await bus.stop();
      assert.equal(await exited, 1);
      assert.match(log, /cannot serve any more; stopping so that systemd restarts the broker/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
