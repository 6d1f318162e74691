import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VfbError } from '../../../src/errors.js';
import { apiSatisfies, checkManifest } from '../../../src/plugins/manifest.js';

const GOOD = {
  name: 'x',
  apiVersion: '^1',
  ids: ['8086:10c9'],
  needsToken: false,
  rotation: 'none',
  description: 'test',
};

describe('plugin manifests', () => {
  it('accepts API ranges this vfbroker (1.0) satisfies, and only those', () => {
    assert.deepEqual(
      ['^1', '^1.0', '^1.1', '^0', '^2', '1', '>=1', '^1.0.0'].map((r) => [r, apiSatisfies(r)]),
      [
        ['^1', true],
        ['^1.0', true],
        ['^1.1', false],
        ['^0', false],
        ['^2', false],
        ['1', false],
        ['>=1', false],
        ['^1.0.0', false],
      ],
    );
  });

  it('rejects unknown keys, duplicate IDs and bad names, naming the key', () => {
    const message = (raw: unknown): string => {
      try {
        checkManifest(raw, '/opt/p.js');
      } catch (err) {
        assert.ok(err instanceof VfbError && err.code === 'CONFIG_INVALID');
        return err.message;
      }
      assert.fail('expected CONFIG_INVALID');
    };
    assert.equal(
      message({ ...GOOD, rotaton: 'none' }),
      'plugin x from /opt/p.js has an invalid manifest: Unrecognized key: "rotaton"',
    );
    assert.equal(
      message({ ...GOOD, ids: ['8086:10c9', '8086:10c9'] }),
      'plugin x from /opt/p.js has an invalid manifest: ids: lists an ID twice',
    );
    assert.equal(
      message({ ...GOOD, name: 'My Plugin' }),
      'plugin My Plugin from /opt/p.js has an invalid manifest: name: expected lower-case letters, digits and dashes',
    );
    assert.equal(
      message(null),
      'plugin from /opt/p.js has an invalid manifest: Invalid input: expected object, received null',
    );
  });

  it('returns a frozen copy', () => {
    const manifest = checkManifest(GOOD, 'built-in');
    assert.ok(Object.isFrozen(manifest) && Object.isFrozen(manifest.ids));
  });
});
