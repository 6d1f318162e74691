import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoPath } from '../../support/repo.js';

const CLI = process.env['VFBROKER_CLI'] ?? repoPath('dist', 'src', 'cli', 'main.js');

function install(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, '--config', '/nonexistent/broker.yaml', 'install', ...args],
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
    );
  });
}

describe('vfbroker install', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'vfb-install-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('writes nothing on a dry run, and says what it would write', async () => {
    const r = await install(['--root', root, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^would write +\/etc\/libvirt\/hooks\/qemu\.d\/vfbroker /m);
    await assert.rejects(stat(join(root, 'etc/libvirt/hooks/qemu.d/vfbroker')));
  });

  it('installs the hook with node’s absolute path, the bus policy, the unit and example configs', async () => {
    const r = await install(['--root', root]);
    assert.equal(r.code, 0, r.stderr);
    const hook = join(root, 'etc/libvirt/hooks/qemu.d/vfbroker');
    assert.equal((await stat(hook)).mode & 0o777, 0o755);
    assert.equal((await readFile(hook, 'utf8')).split('\n')[0], `#!${process.execPath}`);
    assert.match(
      await readFile(join(root, 'etc/systemd/system/vfbroker.service'), 'utf8'),
      new RegExp(`^ExecStart=${process.execPath} /.*/src/cli/main\\.js serve$`, 'm'),
    );
    assert.deepEqual(JSON.parse(await readFile(join(root, 'etc/vfbroker/hook.json'), 'utf8')), {
      deadlineMs: 5000,
    });
    await stat(join(root, 'usr/share/dbus-1/system.d/org.vfbroker.Broker1.conf'));
    // The hook writes its code cache there but never creates the directory itself.
    const cache = await stat(join(root, 'var/cache/vfbroker'));
    assert.ok(cache.isDirectory());
    assert.equal(cache.mode & 0o777, 0o700);
    assert.match(r.stdout, /restart it once/);
  });

  it('changes nothing the second time, and never overwrites the operator’s configuration', async () => {
    await writeFile(join(root, 'etc/vfbroker/policy.yaml'), 'rules: []\n');
    const r = await install(['--root', root]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /^(written|updated) /m);
    assert.match(r.stdout, /^kept +\/etc\/vfbroker\/policy\.yaml /m);
    assert.equal(await readFile(join(root, 'etc/vfbroker/policy.yaml'), 'utf8'), 'rules: []\n');
    assert.doesNotMatch(r.stdout, /restart it once/, 'the hook is there already');
  });
});
