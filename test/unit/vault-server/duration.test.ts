import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatGoDuration, parseDurationSeconds } from '../../support/vault/duration.js';

describe('vault test server: durations', () => {
  it('reads seconds and Go durations the way parseutil.ParseDurationSecond does', () => {
    assert.equal(parseDurationSeconds(90), 90);
    assert.equal(parseDurationSeconds('90'), 90);
    assert.equal(parseDurationSeconds('1h'), 3600);
    assert.equal(parseDurationSeconds('1h30m'), 5400);
    assert.equal(parseDurationSeconds('1.5h'), 5400);
    assert.equal(parseDurationSeconds('2d'), 172800);
    assert.equal(parseDurationSeconds('1500ms'), 1);
    assert.equal(parseDurationSeconds(''), 0);
    for (const bad of ['1x', 'h', '-1h', 1.5, -1, null, {}])
      assert.equal(parseDurationSeconds(bad), undefined);
  });

  it("prints whole seconds like Go's time.Duration", () => {
    assert.equal(formatGoDuration(0), '0s');
    assert.equal(formatGoDuration(45), '45s');
    assert.equal(formatGoDuration(90), '1m30s');
    assert.equal(formatGoDuration(3600), '1h0m0s');
    assert.equal(formatGoDuration(2764800), '768h0m0s');
  });
});
