/**
 * `npm run fuzz`: every fuzz target of test/reliability/fuzz-targets.ts with its full number of
 * cases — 10,000 for each in-process target, 1,000 calls through a real bus. A failure prints
 * fast-check's seed and shrunk counterexample; rerun one with FUZZ_SEED=<seed>.
 *
 * Time and memory are bounded generously (a case is ~1 ms; a whole run a few MB of heap): these
 * bounds catch a blow-up (an alias or entity bomb expanded, a 10,000-element array walked per
 * element with a bus round trip), not a slowdown. Heap is only measured under --expose-gc.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FUZZ_TARGETS, busTarget } from '../reliability/fuzz-targets.js';

const CASES = 10_000;
const BUS_CASES = 1_000;
const MAX_CASE_MS = 5_000;
const MAX_HEAP_GROWTH = 256 * 1024 * 1024;
const seed = process.env['FUZZ_SEED'] === undefined ? undefined : Number(process.env['FUZZ_SEED']);
const gcExposed = typeof (globalThis as { gc?: unknown }).gc === 'function';

describe('fuzzing', () => {
  for (const target of FUZZ_TARGETS) {
    const cases = target === busTarget ? BUS_CASES : CASES;
    it(
      `${target.name}: ${cases} cases, no crash, no token echoed, bounded time and memory`,
      { timeout: 600_000 },
      async () => {
        const stats = await target.run(cases, seed);
        assert.equal(stats.cases, cases);
        assert.ok(stats.maxCaseMs < MAX_CASE_MS, `a case took ${Math.round(stats.maxCaseMs)} ms`);
        if (gcExposed)
          assert.ok(stats.heapGrowthBytes < MAX_HEAP_GROWTH, `heap grew by ${stats.heapGrowthBytes} bytes`);
      },
    );
  }
});
