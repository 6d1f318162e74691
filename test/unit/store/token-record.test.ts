/**
 * The record transitions every backend shares: any sequence of rotations keeps a record that parses,
 * hands out each generation number once, and never lets history or errors carry a token.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  abandoned,
  firstRecord,
  historyOf,
  parseRecord,
  promoted,
  withPending,
  type TokenRecord,
} from '../../../src/broker/store/token-record.js';
import { HISTORY_LIMIT } from '../../../src/broker/store/token-store.js';
import { VfbError } from '../../../src/errors.js';
import { parsePciAddress } from '../../../src/pci/address.js';

const PF = parsePciAddress('0000:3b:00.0');
const NOW = new Date('2030-01-01T00:00:00Z');
const WHERE = 'test';

describe('token record', () => {
  it('keeps a valid record and unique generations through any sequence of steps', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('pend', 'promote', 'abandon'), { maxLength: 80 }), (steps) => {
        let rec: TokenRecord = firstRecord(PF, NOW);
        const handedOut = [rec.active.generation];
        const tokens = new Set([rec.active.token]);
        for (const step of steps) {
          try {
            if (step === 'pend') {
              rec = withPending(PF, rec, NOW);
              handedOut.push(rec.pending!.generation);
              tokens.add(rec.pending!.token);
            } else {
              const ref = { revision: 1, generation: rec.pending?.generation ?? 0 };
              rec = step === 'promote' ? promoted(PF, rec, ref, NOW) : abandoned(PF, rec, ref);
            }
          } catch (err) {
            // The only refusals: a second pending (BUSY), nothing pending (NOT_FOUND).
            assert.ok(err instanceof VfbError);
            assert.ok(step === 'pend' ? err.code === 'BUSY' : err.code === 'NOT_FOUND', err.message);
          }
          assert.deepEqual(parseRecord(PF, JSON.parse(JSON.stringify(rec)), WHERE, 1), rec);
        }
        assert.equal(new Set(handedOut).size, handedOut.length);
        assert.equal(tokens.size, handedOut.length);
        assert.ok(rec.history.length <= HISTORY_LIMIT);
        const history = JSON.stringify(historyOf(rec));
        for (const t of tokens) assert.ok(!history.includes(t));
      }),
    );
  });

  it('refuses to promote a generation other than the pending one', () => {
    const rec = withPending(PF, firstRecord(PF, NOW), NOW);
    assert.throws(() => promoted(PF, rec, { revision: 1, generation: 3 }, NOW), {
      code: 'CONFLICT',
      message: `PF ${PF} has pending generation 2, not 3; re-read and retry`,
    });
  });

  const corrupt: Array<[string, (r: Record<string, unknown>) => unknown, string]> = [
    ['a newer schema', (r) => ({ ...r, schema: 2 }), 'bad or missing schema'],
    ['no active generation', (r) => ({ ...r, active: undefined }), 'bad or missing active'],
    [
      'an upper-case token',
      (r) => ({
        ...r,
        active: { ...(r['active'] as object), token: '3F0C1D2E-0000-4000-8000-000000000000' },
      }),
      'bad or missing active.token',
    ],
    [
      'a UUIDv1 token',
      (r) => ({
        ...r,
        active: { ...(r['active'] as object), token: '3f0c1d2e-0000-1000-8000-000000000000' },
      }),
      'bad or missing active.token',
    ],
    ['a fractional generation', (r) => ({ ...r, lastGeneration: 1.5 }), 'bad or missing lastGeneration'],
    [
      'a pending older than active',
      (r) => ({
        ...r,
        lastGeneration: 3,
        active: { ...(r['active'] as object), generation: 3 },
        pending: { ...(r['active'] as object), generation: 2 },
      }),
      'its generation numbers are inconsistent',
    ],
    ['not an object', () => 'token', 'bad or missing (root)'],
  ];
  for (const [what, mutate, why] of corrupt) {
    it(`reports ${what} as STORE_CORRUPT without the values`, () => {
      const good = JSON.parse(JSON.stringify(firstRecord(PF, NOW))) as Record<string, unknown>;
      const bad = mutate(good);
      assert.throws(
        () => parseRecord(PF, bad, WHERE, 7),
        (err: unknown) => {
          assert.ok(err instanceof VfbError);
          assert.equal(err.code, 'STORE_CORRUPT');
          assert.equal(err.message, `token record of PF ${PF} at ${WHERE} is malformed: ${why}`);
          assert.deepEqual(err.details, { pf: PF, revision: 7 });
          assert.ok(!err.message.includes((good['active'] as { token: string }).token));
          return true;
        },
      );
    });
  }
});
