import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { kstrtobool, kstrtou16 } from '../../../src/sysfs/sim/kstrtox.js';

describe('kstrtou16', () => {
  it('reads numbers as the kernel does, base from the prefix', () => {
    const cases: [string, number][] = [
      ['0', 0],
      ['7', 7],
      ['7\n', 7],
      ['+7', 7],
      ['0x1f', 31],
      ['0X1F', 31],
      ['010', 8],
      ['65535', 65535],
      ['0000000000007', 7],
    ];
    for (const [s, value] of cases) assert.deepEqual(kstrtou16(s), { value }, JSON.stringify(s));
  });

  it('refuses what the kernel refuses', () => {
    for (const s of ['', '\n', '-1', ' 7', '7 ', '7\n\n', '0x', '08', '1.5', 'seven', '+', '++7', '0xg']) {
      assert.deepEqual(kstrtou16(s), { error: 'EINVAL' }, JSON.stringify(s));
    }
    for (const s of ['65536', '0x10000', '99999999999999999999'])
      assert.deepEqual(kstrtou16(s), { error: 'ERANGE' }, s);
  });

  it('reads back every value it could be given in decimal, hex or octal', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (n) => {
        assert.deepEqual(kstrtou16(String(n)), { value: n });
        assert.deepEqual(kstrtou16(`0x${n.toString(16)}\n`), { value: n });
        assert.deepEqual(kstrtou16(`0${n.toString(8)}`), { value: n });
      }),
    );
  });
});

describe('kstrtobool', () => {
  it('decides by the first letters', () => {
    for (const s of ['1', 'y', 'Y', 'yes', 't', 'true', 'on', 'ON', '1\n'])
      assert.equal(kstrtobool(s), true, s);
    for (const s of ['0', 'n', 'N', 'no', 'f', 'false', 'off', 'oFf', '0\n'])
      assert.equal(kstrtobool(s), false, s);
    for (const s of ['', '\n', 'maybe', 'o', 'ox', '2', ' 1'])
      assert.equal(kstrtobool(s), null, JSON.stringify(s));
  });
});
