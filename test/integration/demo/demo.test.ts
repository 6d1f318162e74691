/**
 * `vfbroker demo` as a user runs it: the built CLI as a child process, which starts a private
 * dbus-daemon, the real broker with its PF driver stand-ins, and the hook for each guest. One demo
 * runs at a time on a machine (src/demo/lock.ts), so these tests run one after the other.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const GUEST_UUIDS = [
  '3f2c8a91-6b4e-4d7a-9f10-2a6b8c4d0e11',
  '7a41d2c8-0e9f-4b53-8c26-d1e5f7a93b22',
  'c9e07b15-2d84-4f6a-b1c3-58e2a9d04f33',
];
const UUID = /[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}/gi;

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI; `onStdout` may act on the output as it arrives (to send a signal). */
function vfbroker(
  args: string[],
  onStdout?: (soFar: string, child: ReturnType<typeof spawn>) => void,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      onStdout?.(stdout, child);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Processes whose command line names the directory, as pgrep sees them. */
function processesNaming(dir: string): string[] {
  const result = spawnSync('pgrep', ['-f', '-a', '--', `${dir}/`], { encoding: 'utf8' });
  return result.stdout.split('\n').filter((l) => l.trim() !== '');
}

/** The demos' workspaces in the temporary directory. */
function demoDirectories(): string[] {
  return readdirSync(tmpdir()).filter((name) => name.startsWith('vfbroker-demo-'));
}

function assertNoTokenIn(text: string): void {
  const uuids = new Set((text.match(UUID) ?? []).map((u) => u.toLowerCase()));
  for (const known of GUEST_UUIDS) uuids.delete(known);
  assert.deepEqual([...uuids], [], 'a UUID other than a guest UUID (a token?) appeared in the output');
}

interface Step {
  kind: string;
  guest?: string;
  args?: string[];
  outcome?: string;
  verdict?: string | null;
  refusals?: { vf: string; verdict: string }[];
  libvirtError?: string[] | null;
  pfs?: { address: string; leases: number; generation: number }[] | null;
  state?: string;
  generation?: { before: number; after: number } | number;
}

interface Report {
  setup: { directory: string; bus: { address: string } };
  steps: Step[];
  kept: { directory: string; busAddress: string; stopCommand: string } | null;
}

describe('vfbroker demo', () => {
  it('runs the scenario, reports each verdict, and leaves nothing behind', async () => {
    const run = await vfbroker(['demo', '--json']);
    assert.equal(run.stderr, '');
    assert.equal(run.code, 0);
    const report = JSON.parse(run.stdout) as Report;

    const prepares = report.steps
      .filter((s) => s.kind === 'hook' && s.args?.[1] === 'prepare')
      .map((s) => [s.guest, s.verdict, s.outcome]);
    assert.deepEqual(prepares, [
      ['vdu-1', 'ok', 'accepted'],
      ['vdu-2', 'token-stale', 'refused'],
      ['scratch-vm', 'denied', 'refused'],
      ['vdu-1', 'token-stale', 'refused'],
      ['vdu-1', 'ok', 'accepted'],
    ]);

    const stale = report.steps.find((s) => s.guest === 'vdu-2');
    assert.deepEqual(stale?.refusals, [{ vf: '0000:b1:00.2', verdict: 'token-stale' }]);
    const [failed, why] = stale?.libvirtError ?? [];
    assert.equal(failed, "error: Failed to start domain 'vdu-2'");
    assert.match(
      why ?? '',
      /^error: Hook script execution failed: internal error: Child process \(LC_ALL=C PATH=\S+ .*\/etc\/libvirt\/hooks\/qemu\.d\/vfbroker vdu-2 prepare begin -\) unexpected exit status 1: vfbroker: VF 0000:b1:00\.2 \(PF 0000:b1:00\.0 VF 1\): the definition of vdu-2 carries an outdated vf-token \(active generation 1\); run: vfbroker guest sync vdu-2$/,
    );

    const [withLease, released] = report.steps.filter((s) => s.kind === 'token-status');
    const leases = (s: Step | undefined) =>
      Object.fromEntries((s?.pfs ?? []).map((p) => [p.address, p.leases]));
    assert.deepEqual(leases(withLease), { '0000:04:00.0': 1, '0000:b1:00.0': 1, '0000:5e:00.0': 0 });
    assert.deepEqual(leases(released), { '0000:04:00.0': 0, '0000:b1:00.0': 0, '0000:5e:00.0': 0 });

    const rotation = report.steps.find((s) => s.kind === 'rotate');
    assert.equal(rotation?.state, 'done');
    assert.deepEqual(rotation?.generation, { before: 1, after: 2 });
    assert.deepEqual(report.steps.find((s) => s.kind === 'sync')?.generation, 2);

    assert.equal(report.kept, null);
    assert.equal(existsSync(report.setup.directory), false, 'the workspace is removed');
    assert.deepEqual(processesNaming(report.setup.directory), []);
    assertNoTokenIn(run.stdout + run.stderr);
  });

  it('--keep leaves the broker answering on its bus until --stop ends it', async () => {
    const run = await vfbroker(['demo', '--keep', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as Report;
    const dir = report.kept?.directory ?? '';
    try {
      assert.equal(dir, report.setup.directory);
      assert.equal(report.kept?.stopCommand.endsWith(`demo --stop ${dir}`), true);
      // The broker, the bus, the DPDK stand-in and pf_bb_config's daemon.
      assert.equal(processesNaming(dir).length, 4, processesNaming(dir).join('\n'));

      const status = await vfbroker(['--bus', report.kept?.busAddress ?? '', '--json', 'token', 'status']);
      assert.equal(status.code, 0, status.stderr);
      const { pfs } = JSON.parse(status.stdout) as {
        pfs: { address: string; generation: number; leases: number }[];
      };
      // The rotated igb PF, and the lease of vdu-1, which the demo left running.
      assert.deepEqual(
        pfs.map((p) => [p.address, p.generation, p.leases]),
        [
          ['0000:04:00.0', 2, 1],
          ['0000:b1:00.0', 1, 1],
          ['0000:5e:00.0', 0, 0],
        ],
      );

      // A second demo would simulate the same cards: it is refused, and leaves nothing behind.
      const before = demoDirectories();
      const second = await vfbroker(['demo']);
      assert.equal(second.code, 75);
      assert.equal(
        second.stderr,
        `vfbroker: another vfbroker demo is running in ${dir}\n  hint: both would simulate the same cards; wait for it to end, or stop it with: vfbroker demo --stop ${dir}\n`,
      );
      assert.deepEqual(demoDirectories(), before);

      const stop = await vfbroker(['--json', 'demo', '--stop', dir]);
      assert.equal(stop.code, 0, stop.stderr);
      assert.deepEqual(JSON.parse(stop.stdout), { stopped: { directory: dir, processes: 4 } });
      assert.equal(existsSync(dir), false);
      assert.deepEqual(processesNaming(dir), []);
      assertNoTokenIn(run.stdout + run.stderr + status.stdout + status.stderr);
    } finally {
      if (dir !== '' && existsSync(dir)) await vfbroker(['demo', '--stop', dir]);
    }
  });

  it('stops everything and removes its directory on Ctrl-C', async () => {
    let dir = '';
    let sent = false;
    const run = await vfbroker(['demo'], (soFar, child) => {
      dir ||= /lives in (\S+) and goes away/.exec(soFar)?.[1] ?? '';
      // Once the broker is up, its PF drivers (pf_bb_config's daemon among them) run too.
      if (!sent && soFar.includes('The broker brought the PFs up')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    assert.equal(run.code, 130, run.stderr);
    assert.notEqual(dir, '');
    assert.equal(
      run.stderr,
      `vfbroker: warning: SIGINT: stopping what the demo started and removing ${dir}\n`,
    );
    assert.equal(run.stdout.includes('\u001b['), false, 'no colour when stdout is not a terminal');
    assert.equal(existsSync(dir), false);
    assert.deepEqual(processesNaming(dir), []);
  });

  it('--stop refuses a directory the demo did not leave', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'not-a-demo-'));
    try {
      const run = await vfbroker(['demo', '--stop', dir]);
      assert.equal(run.code, 66);
      assert.equal(
        run.stderr,
        `vfbroker: ${dir} is not a directory left by \`vfbroker demo --keep\`\n  hint: give the directory the demo printed at its end\n`,
      );
      assert.equal(existsSync(dir), true, 'nothing was removed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
