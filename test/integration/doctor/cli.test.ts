/** `vfbroker doctor` as a process: exit status, one JSON document, plain text when not on a TTY. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, repoPath } from '../../support/repo.js';

const moduleUrl = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);

/**
 * `vfbroker doctor` as a program of its own, run the way src/cli/main.ts runs every command (global
 * options, one catch that maps the error to its exit status), so that the command is tested apart
 * from its place in the command tree. Evaluated with -e: a helper .js file under test/ would itself
 * be taken for a test file by `node --test`.
 */
const PROGRAM = `
import { Command } from 'commander';
import { registerDoctor } from ${moduleUrl('../../../src/cli/commands/doctor.js')};
import { addGlobalOptions } from ${moduleUrl('../../../src/cli/context.js')};
import { Output } from ${moduleUrl('../../../src/cli/output.js')};
const program = addGlobalOptions(new Command('vfbroker'));
registerDoctor(program);
try {
  await program.parseAsync(process.argv.slice(1), { from: 'user' });
} catch (err) {
  process.exitCode = new Output({ json: process.argv.includes('--json') }).error(err);
}
`;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', PROGRAM, '--', ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let dir: string;
let common: string[];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfbroker-doctor-cli-'));
  const config = join(dir, 'broker.yaml');
  await writeFile(
    config,
    [
      'hostId: node-7',
      `store: { type: file, directory: ${join(dir, 'tokens')} }`,
      `sysfs: { simulator: { fixture: ${repoPath('test', 'fixtures', 'hosts', 'igb-82576.yaml')}, stateFile: ${join(dir, 'host.json')} } }`,
      'pfs:',
      "  - { address: '0000:04:00.0', plugin: igb, vfs: 2 }",
      '',
    ].join('\n'),
  );
  // No broker listens on this bus: that is the failure every run below finds.
  common = ['--config', config, '--bus', `unix:path=${join(dir, 'no-bus')}`];
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('vfbroker doctor (process)', () => {
  it('prints one JSON document and exits 1 when a check failed', async () => {
    const r = await run(['doctor', ...common, '--json']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, '');
    const report = JSON.parse(r.stdout) as {
      failed: boolean;
      target: unknown;
      findings: { id: string; status: string; what: string }[];
    };
    assert.equal(report.failed, true);
    assert.deepEqual(report.target, { kind: 'host' });
    const byId = new Map(report.findings.map((f) => [f.id, f]));
    assert.equal(byId.get('config')?.status, 'ok');
    assert.equal(byId.get('vfio-pci')?.what, 'vfio-pci is loaded with enable_sriov=Y');
    assert.equal(byId.get('broker')?.status, 'fail');
  });

  it('prints text without colour when stdout is not a terminal', async () => {
    const r = await run(['doctor', ...common]);
    assert.equal(r.code, 1);
    const lines = r.stdout.trimEnd().split('\n');
    assert.ok(lines.some((l) => l.startsWith('✗ broker: the broker is not reachable: ')));
    assert.ok(
      lines.includes(
        '    fix: systemctl status vfbroker (start it with systemctl start vfbroker; its log: journalctl -u vfbroker)',
      ),
    );
    assert.match(
      lines.at(-1) ?? '',
      /^\d+ ok, \d+ warning\(s\), [1-9]\d* failed, \d+ skipped: a VF would refuse to open \(see ✗ above\)$/,
    );
    assert.ok(!r.stdout.includes('\x1b['));
  });

  it('refuses an address that is not one, with exit status 64', async () => {
    const r = await run(['doctor', ...common, '--vf', 'bogus']);
    assert.equal(r.code, 64);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^vfbroker: invalid PCI address "bogus": /);
  });
});
