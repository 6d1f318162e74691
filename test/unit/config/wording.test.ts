import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  describeValue,
  expectation,
  formatPath,
  suggest,
  unknownKeysMessage,
} from '../../../src/config/wording.js';
import { formatDuration, parseDuration } from '../../../src/config/duration.js';

describe('suggest', () => {
  const keys = ['plugin', 'vfs', 'pf', 'stateDirectory', 'runtimeDirectory', 'address'];

  it('finds swapped, missing and extra letters', () => {
    assert.equal(suggest('plguin', keys), 'plugin');
    assert.equal(suggest('adress', keys), 'address');
    assert.equal(suggest('addresss', keys), 'address');
  });

  it('ignores case, "_" and "-"', () => {
    assert.equal(suggest('state_directory', keys), 'stateDirectory');
    assert.equal(suggest('Runtime-Directory', keys), 'runtimeDirectory');
  });

  it('prefers the word that starts the same way', () => {
    assert.equal(suggest('vf', keys), 'vfs');
  });

  it('suggests nothing when nothing is close', () => {
    assert.equal(suggest('colour', keys), null);
    assert.equal(suggest('x'.repeat(100), keys), null);
  });
});

describe('messages', () => {
  it('words unknown keys with or without a suggestion', () => {
    assert.equal(
      unknownKeysMessage(['plguin'], ['plugin', 'vfs']),
      'unknown key "plguin" (did you mean "plugin"?)',
    );
    assert.equal(
      unknownKeysMessage(['zzz'], ['plugin', 'vfs']),
      'unknown key "zzz" (expected one of "plugin", "vfs")',
    );
    assert.equal(
      unknownKeysMessage(['plguin', 'zzz'], ['plugin']),
      'unknown key "plguin" (did you mean "plugin"?); unknown key "zzz" (expected one of "plugin")',
    );
  });

  it('describes what was found', () => {
    assert.equal(describeValue('eight'), '"eight"');
    assert.equal(describeValue('a\nb'), '"a\\nb"');
    assert.equal(describeValue(''), 'an empty string');
    assert.equal(describeValue('x'.repeat(25)), 'a string of 25 characters');
    assert.equal(describeValue(1.5), '1.5');
    assert.equal(describeValue(false), 'false');
    assert.equal(describeValue(null), 'an empty value');
    assert.equal(describeValue([]), 'an empty list');
    assert.equal(describeValue([1]), 'a list');
    assert.equal(describeValue({}), 'an empty mapping');
    assert.equal(describeValue({ a: 1 }), 'a mapping');
    assert.equal(expectation('an integer', undefined), 'missing (expected an integer)');
    assert.equal(expectation('an integer', 'x'), 'expected an integer, found "x"');
  });

  it('formats key paths', () => {
    assert.equal(formatPath([]), '');
    assert.equal(formatPath(['pfs', 1, 'vfs']), 'pfs[1].vfs');
    assert.equal(formatPath(['pfs', 0, 'options', 'a.b']), 'pfs[0].options["a.b"]');
  });
});

describe('durations', () => {
  it('parses units and sums compound durations', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('45s'), 45_000);
    assert.equal(parseDuration('10m'), 600_000);
    assert.equal(parseDuration('12h'), 43_200_000);
    assert.equal(parseDuration('30d'), 2_592_000_000);
    assert.equal(parseDuration('2w'), 1_209_600_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
  });

  it('rejects anything else', () => {
    for (const bad of ['', '10', '1.5h', '-1h', '1 h', '1H', 'h', '1y', '1h30', '1234567s', '1s1s1s1s1s']) {
      assert.equal(parseDuration(bad), null, bad);
    }
  });

  it('formats in the largest whole unit', () => {
    assert.equal(formatDuration(60_000), '1m');
    assert.equal(formatDuration(3650 * 86_400_000), '3650d');
    assert.equal(formatDuration(1_209_600_000), '2w');
    assert.equal(formatDuration(1_500), '1500ms');
  });
});
