/**
 * inspectHookInstallation over a real directory tree: what `vfbroker doctor` reports about the hook
 * is exactly what `vfbroker install` would change.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { applyInstall } from '../../../src/install/apply.js';
import { inspectHookInstallation } from '../../../src/install/inspect.js';
import { planInstall } from '../../../src/install/plan.js';

describe('inspectHookInstallation', () => {
  let root: string;
  const options = () => ({ config: null, node: process.execPath, root });
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'vfb-inspect-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('finds nothing on a host without an install, everything after one', async () => {
    assert.deepEqual(await inspectHookInstallation(options()), {
      hook: 'missing',
      settings: 'missing',
      cacheDirectory: 'missing',
    });
    await applyInstall(await planInstall(options()), root, false);
    assert.deepEqual(await inspectHookInstallation(options()), {
      hook: 'current',
      settings: 'current',
      cacheDirectory: 'current',
    });
  });

  it('tells a hook of another node, edited settings and a widened cache directory apart', async () => {
    assert.deepEqual(await inspectHookInstallation({ ...options(), node: '/opt/other/bin/node' }), {
      hook: 'differs',
      settings: 'current',
      cacheDirectory: 'current',
    });
    await writeFile(join(root, 'etc/vfbroker/hook.json'), '{"deadlineMs": 1}\n');
    await chmod(join(root, 'var/cache/vfbroker'), 0o755);
    assert.deepEqual(await inspectHookInstallation(options()), {
      hook: 'current',
      settings: 'differs',
      cacheDirectory: 'differs',
    });
  });
});
