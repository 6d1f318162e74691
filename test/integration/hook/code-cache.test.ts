/**
 * The installed hook's V8 code cache (src/hooks/code-cache.ts), through the bundle run as libvirt runs
 * it. A cache only makes the hook faster, so what is checked is what must never change because of it
 * — the hook's answers — and which cache files it trusts, writes and leaves alone.
 */
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runHook, type HookRun } from '../../reliability/hook-runner.js';

const HEADER = /^vfbroker qemu hook code cache [0-9a-f]{64}\n/;

describe('the hook’s code cache', () => {
  let dir: string;
  let settings: string;
  let n = 0;
  const freshCacheDir = async () => {
    const d = join(dir, `cache-${n++}`);
    await mkdir(d, { mode: 0o700 });
    return d;
  };
  /** A start refused on unreadable XML: the hook's whole prepare path up to the first verdict, no bus. */
  const refusedStart = (cache: string) =>
    runHook(settings, ['vm1', 'prepare', 'begin', '-'], { xml: '<domain><oops' }, { codeCache: cache });
  const answer = (r: HookRun) => ({ exitCode: r.exitCode, stderr: r.stderr, stdout: r.stdout });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfb-code-cache-'));
    settings = join(dir, 'hook.json');
    await writeFile(settings, JSON.stringify({ busAddress: 'unix:path=/nonexistent/bus' }), { mode: 0o600 });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes a private cache on the first run, uses it after, and answers the same throughout', async () => {
    const cache = join(await freshCacheDir(), 'qemu-hook.v8');
    const uncached = answer(await refusedStart(''));
    assert.notEqual(uncached.exitCode, 0);
    assert.match(uncached.stderr, /^vfbroker: .*prepare of guest "vm1" refused$/);

    assert.deepEqual(answer(await refusedStart(cache)), uncached, 'cold');
    const written = await stat(cache);
    assert.ok(written.isFile());
    assert.equal(written.mode & 0o777, 0o600);
    assert.match((await readFile(cache)).subarray(0, 100).toString('latin1'), HEADER);

    assert.deepEqual(answer(await refusedStart(cache)), uncached, 'warm');
    const reused = await stat(cache);
    assert.equal(reused.ino, written.ino, 'a usable cache is not written again');
    assert.equal(reused.mtimeMs, written.mtimeMs);
  });

  it('replaces a cache it cannot use: garbage, another build, writable by others', async () => {
    const cacheDir = await freshCacheDir();
    const cache = join(cacheDir, 'qemu-hook.v8');
    const unusable: ReadonlyArray<readonly [string, Buffer, number]> = [
      ['garbage', Buffer.from('not a code cache at all'), 0o600],
      [
        'another build',
        Buffer.from(`vfbroker qemu hook code cache ${'0'.repeat(64)}\n${'x'.repeat(4096)}`),
        0o600,
      ],
    ];
    for (const [what, content, mode] of unusable) {
      await writeFile(cache, content, { mode });
      const before = await stat(cache);
      const r = await refusedStart(cache);
      assert.match(r.stderr, /refused$/, what);
      const afterwards = await stat(cache);
      assert.notEqual(afterwards.ino, before.ino, `${what}: replaced`);
      assert.match((await readFile(cache)).subarray(0, 100).toString('latin1'), HEADER, what);
    }
    // A good cache that others could have written is not trusted either.
    await chmod(cache, 0o622);
    const shared = await stat(cache);
    await refusedStart(cache);
    const after = await stat(cache);
    assert.notEqual(after.ino, shared.ino);
    assert.equal(after.mode & 0o777, 0o600);
  });

  it('never follows a link to a cache', async () => {
    const cacheDir = await freshCacheDir();
    const real = join(cacheDir, 'real.v8');
    await refusedStart(real);
    const link = join(cacheDir, 'qemu-hook.v8');
    await symlink(real, link);
    const before = await stat(real);
    await refusedStart(link);
    assert.ok((await lstat(link)).isFile(), 'the link was replaced by a file of the hook’s own');
    assert.equal((await stat(real)).ino, before.ino, 'the link’s target was left alone');
  });

  it('creates no directory for its cache', async () => {
    const missing = join(dir, 'no-such-dir', 'qemu-hook.v8');
    const r = await refusedStart(missing);
    assert.match(r.stderr, /refused$/);
    await assert.rejects(stat(join(dir, 'no-such-dir')), { code: 'ENOENT' });
  });
});
