import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { atLeast, formatVersion, parseVersion } from '../../../src/doctor/version.js';

describe('doctor: release numbers', () => {
  it('reads major.minor[.patch] from the start of kernel and QEMU releases', () => {
    assert.deepEqual(parseVersion('6.8.0-45-generic'), { major: 6, minor: 8, patch: 0 });
    assert.deepEqual(parseVersion('6.17-rc1'), { major: 6, minor: 17, patch: 0 });
    assert.deepEqual(parseVersion('6.12.9+bpo-amd64'), { major: 6, minor: 12, patch: 9 });
    assert.deepEqual(parseVersion('8.2.2'), { major: 8, minor: 2, patch: 2 });
    assert.equal(parseVersion('Linux 6.8'), null);
    assert.equal(parseVersion('6'), null);
  });

  it('compares part by part, not as text', () => {
    const v = (s: string) => parseVersion(s) ?? assert.fail(s);
    assert.equal(atLeast(v('6.18.3'), 6, 18, 3), true);
    assert.equal(atLeast(v('6.18.2'), 6, 18, 3), false);
    assert.equal(atLeast(v('6.19.0'), 6, 18, 3), true);
    assert.equal(atLeast(v('6.9.0'), 6, 17), false);
    assert.equal(atLeast(v('10.0.2'), 8, 1), true);
    assert.equal(atLeast(v('7.2.0'), 8, 1), false);
    assert.equal(atLeast(v('5.7'), 5, 7), true);
    assert.equal(formatVersion(v('6.17')), '6.17.0');
  });
});
