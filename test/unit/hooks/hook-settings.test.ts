import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseHookSettings, readHookSettings } from '../../../src/hooks/hook-settings.js';
import { VfbError } from '../../../src/errors.js';

const FILE = '/etc/vfbroker/hook.json';

function refused(raw: unknown): string {
  try {
    parseHookSettings(raw, FILE);
  } catch (err) {
    assert.ok(err instanceof VfbError && err.code === 'CONFIG_INVALID');
    return err.message;
  }
  assert.fail('expected CONFIG_INVALID');
}

describe('hook settings', () => {
  it('fills defaults: the system bus, /sys, the hook’s own deadline', () => {
    assert.deepEqual(parseHookSettings({}, FILE), {
      busAddress: null,
      deadlineMs: null,
      sysfs: { root: '/sys' },
    });
  });

  it('takes a private bus, a deadline and a simulated host', () => {
    const s = parseHookSettings(
      {
        busAddress: 'unix:path=/run/x/bus',
        deadlineMs: 2000,
        sysfs: { simulator: { fixture: '/a.yaml', stateFile: '/b.json' } },
      },
      FILE,
    );
    assert.deepEqual(s, {
      busAddress: 'unix:path=/run/x/bus',
      deadlineMs: 2000,
      sysfs: { simulator: { fixture: '/a.yaml', stateFile: '/b.json' } },
    });
  });

  it('refuses what it does not understand, naming the file', () => {
    assert.equal(refused([]), `${FILE} must hold a JSON object`);
    assert.equal(refused({ bus: 'x' }), `${FILE} has unknown keys: "bus"`);
    assert.match(refused({ busAddress: 'unixexec:path=/bin/sh' }), /busAddress must be "unix:path=\/…"$/);
    assert.match(refused({ deadlineMs: 0 }), /deadlineMs must be a whole number/);
    assert.match(refused({ sysfs: { root: 'relative' } }), /sysfs must be/);
    assert.match(refused({ sysfs: { root: '/sys', simulator: {} } }), /sysfs must be/);
  });

  it('reads the file named by VFBROKER_HOOK_SETTINGS, and refuses one that is not JSON', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfb-hook-settings-'));
    try {
      const file = join(dir, 'hook.json');
      await writeFile(file, JSON.stringify({ deadlineMs: 750 }));
      assert.equal(readHookSettings({ VFBROKER_HOOK_SETTINGS: file }).deadlineMs, 750);
      await writeFile(file, '{');
      assert.throws(
        () => readHookSettings({ VFBROKER_HOOK_SETTINGS: file }),
        /hook\.json is not valid JSON$/,
      );
      assert.throws(
        () => readHookSettings({ VFBROKER_HOOK_SETTINGS: join(dir, 'missing.json') }),
        /missing\.json cannot be read$/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
