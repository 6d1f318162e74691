import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { repoPath } from '../support/repo.js';
import type * as errors from '../../src/errors.js';
import { ERROR_KINDS, KernelError, VfbError, toVfbError, type ErrorCode } from '../../src/errors.js';

const docsPath = repoPath('docs', 'errors.md');

describe('error catalogue', () => {
  it('matches docs/errors.md row for row: code, D-Bus name, exit status and hint', async () => {
    const doc = await readFile(docsPath, 'utf8');
    const rows = new Map<string, string[]>();
    for (const line of doc.split('## Kernel errnos')[0]!.split('\n')) {
      // Cells split on '|' and trimmed, so the table may be aligned any way.
      const cells = line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
      const code = /^`([A-Z_]+)`$/.exec(cells[0] ?? '')?.[1];
      if (code) rows.set(code, cells.slice(1));
    }
    assert.deepEqual(
      [...rows.keys()].sort(),
      Object.keys(ERROR_KINDS).sort(),
      'every code documented, none extra',
    );
    for (const [code, kind] of Object.entries(ERROR_KINDS)) {
      const [dbus, exit, , howTo] = rows.get(code) as string[];
      assert.equal(dbus, `\`org.vfbroker.Error.${kind.dbus}\``, `${code}: D-Bus name`);
      assert.equal(Number(exit), kind.exit, `${code}: exit status`);
      assert.equal(howTo, kind.hint, `${code}: hint`);
    }
  });

  it('exit statuses stay clear of 0 (success), 1 (generic failure) and the shell range from 126', () => {
    for (const kind of Object.values(ERROR_KINDS)) assert.ok(kind.exit > 1 && kind.exit < 126);
  });

  it('keeps messages on one line', () => {
    const err = new VfbError('NOT_FOUND', 'no PF\n  0000:3b:00.0\r\nhere');
    assert.equal(err.message, 'no PF 0000:3b:00.0 here');
    assert.equal(err.dbusName, 'org.vfbroker.Error.NotFound');
    assert.equal(err.exitCode, 66);
  });

  it('carries the errno and path of a kernel refusal', () => {
    const err = new KernelError(
      'EBUSY',
      '/sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs',
      'cannot change sriov_numvfs',
    );
    assert.equal(err.code, 'KERNEL_REFUSED' satisfies ErrorCode);
    assert.equal(err.errno, 'EBUSY');
    assert.equal(
      err.message,
      'cannot change sriov_numvfs (EBUSY on /sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs)',
    );
    assert.deepEqual(
      { ...err.details },
      { errno: 'EBUSY', path: '/sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs' },
    );
  });

  it('recognises a VfbError made by another copy of the module (the hook bundle embeds one)', async () => {
    const copy = (await import(
      `${new URL('../../src/errors.js', import.meta.url).href}?copy`
    )) as typeof errors;
    assert.notEqual(copy.VfbError, VfbError, 'a second copy of the module');
    const foreign = new copy.VfbError('UNAVAILABLE', 'broker not running');
    assert.ok(foreign instanceof VfbError);
    assert.equal(toVfbError(foreign), foreign);
    assert.equal(
      new VfbError('BUSY', 'x') instanceof KernelError,
      false,
      'subclasses keep the ordinary check',
    );
    assert.ok(new KernelError('EBUSY', '/sys/x', 'y') instanceof VfbError);
  });

  it('wraps foreign errors as INTERNAL without their message', () => {
    const err = toVfbError(new Error('secret detail'));
    assert.equal(err.code, 'INTERNAL');
    assert.equal(err.message, 'unexpected internal error');
  });
});
