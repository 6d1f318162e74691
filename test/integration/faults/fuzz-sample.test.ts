/**
 * A few hundred cases of every fuzz target (test/reliability/fuzz-targets.ts) on each `npm test`,
 * so a regression at an input boundary shows up without `npm run fuzz`. Same properties: no crash
 * (only a VfbError with a one-line message), no token echoed back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FUZZ_TARGETS, busTarget, configTarget } from '../../reliability/fuzz-targets.js';

const CASES = 300;
/** Each costs a bus round trip, or a YAML parse of up to 3,000 nested levels. */
const SLOW_CASES = 150;

describe('fuzz sample', () => {
  for (const target of FUZZ_TARGETS) {
    const cases = target === busTarget || target === configTarget ? SLOW_CASES : CASES;
    it(`${target.name}: ${cases} cases`, async () => {
      assert.equal((await target.run(cases)).cases, cases);
    });
  }
});
