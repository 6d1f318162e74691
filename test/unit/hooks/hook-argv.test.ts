import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseHookArgv } from '../../../src/hooks/hook-argv.js';

describe('parseHookArgv', () => {
  it('reads the ops libvirt runs the qemu hook with', () => {
    const cases: [string[], string, string | null][] = [
      [['vm1', 'prepare', 'begin', '-'], 'prepare', null],
      [['vm1', 'start', 'begin', '-'], 'start', null],
      [['vm1', 'started', 'begin', '-'], 'started', null],
      [['vm1', 'stopped', 'end', '-'], 'stopped', null],
      [['vm1', 'release', 'end', 'destroyed'], 'release', 'destroyed'],
      [['vm1', 'release', 'end', 'from snapshot'], 'release', 'from snapshot'],
      [['vm1', 'migrate', 'begin', '-'], 'migrate', null],
      [['vm1', 'restore', 'begin', '-'], 'restore', null],
    ];
    for (const [argv, op, extra] of cases) {
      assert.deepEqual(parseHookArgv(argv), { domain: 'vm1', op, rawOp: argv[1], subop: argv[2], extra });
    }
  });

  it('turns unknown ops, known ops with another subop and missing arguments into ignored ops', () => {
    assert.equal(parseHookArgv(['vm1', 'reconnect', 'begin', '-']).op, 'other');
    assert.equal(parseHookArgv(['vm1', 'prepare', 'end', '-']).op, 'other');
    assert.equal(parseHookArgv(['vm1', 'hasOwnProperty', 'begin', '-']).op, 'other');
    assert.deepEqual(parseHookArgv([]), { domain: '-', op: 'other', rawOp: '-', subop: '-', extra: null });
  });
});
