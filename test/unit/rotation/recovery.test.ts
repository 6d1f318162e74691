/**
 * The crash-point table of recovery.ts, row by row: what a broker that finds a journal entry does,
 * given what the store holds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JournalEntry, JournalStep } from '../../../src/broker/rotation/journal.js';
import { recoveryAction, type RecoveryAction } from '../../../src/broker/rotation/recovery.js';
import type { PfTokens, TokenGeneration } from '../../../src/broker/store/token-store.js';
import { parsePciAddress } from '../../../src/pci/address.js';

const PF = parsePciAddress('0000:3b:00.0');
const G1: TokenGeneration = {
  generation: 1,
  token: '5c1e7a2b-3d4f-4e6a-8b9c-0d1e2f3a4b5c',
  createdAt: '2030-01-01T00:00:00.000Z',
};
const G2: TokenGeneration = {
  generation: 2,
  token: '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d',
  createdAt: '2030-02-01T00:00:00.000Z',
};
const G3: TokenGeneration = {
  generation: 3,
  token: '1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9',
  createdAt: '2030-03-01T00:00:00.000Z',
};

function entry(step: JournalStep, mode: 'live' | 'drain', generation: number | null = 2): JournalEntry {
  return { pf: PF, mode, step, from: 1, generation, startedAt: '2030-02-01T00:00:00.000Z', deadline: null };
}

function store(active: TokenGeneration, pending: TokenGeneration | null): PfTokens {
  return { pf: PF, active, pending, revision: 7 };
}

const withPending = store(G1, G2);
const promoted = store(G2, null);
const untouched = store(G1, null);
/** Another writer's rotation came after ours was abandoned. */
const elsewhere = store(G1, G3);

const rows: ReadonlyArray<[string, JournalEntry, PfTokens, RecoveryAction]> = [
  [
    'writing-pending, the write landed',
    entry('writing-pending', 'live', null),
    withPending,
    { kind: 'abandon', pending: G2 },
  ],
  ['writing-pending, it did not', entry('writing-pending', 'drain', null), untouched, { kind: 'forget' }],
  [
    'writing-pending, the active generation moved on',
    entry('writing-pending', 'live', null),
    store(G2, G3),
    { kind: 'forget' },
  ],
  ['draining', entry('draining', 'drain'), withPending, { kind: 'abandon', pending: G2 }],
  ['draining, already abandoned', entry('draining', 'drain'), untouched, { kind: 'forget' }],
  ['applying, live', entry('applying', 'live'), withPending, { kind: 'apply-pending', pending: G2 }],
  ['applying, drain', entry('applying', 'drain'), withPending, { kind: 'rollback', pending: G2 }],
  ['applying, pending gone', entry('applying', 'live'), elsewhere, { kind: 'reapply-active' }],
  ['promoting', entry('promoting', 'drain'), withPending, { kind: 'promote', pending: G2 }],
  ['promoting, the promote landed', entry('promoting', 'live'), promoted, { kind: 'sync', generation: 2 }],
  ['promoting, pending gone', entry('promoting', 'live'), untouched, { kind: 'reapply-active' }],
  ['syncing', entry('syncing', 'live'), promoted, { kind: 'sync', generation: 2 }],
  ['syncing, a later rotation won', entry('syncing', 'live'), store(G3, null), { kind: 'forget' }],
  ['rolling-back', entry('rolling-back', 'live'), withPending, { kind: 'rollback', pending: G2 }],
  ['rolling-back, the abandon landed', entry('rolling-back', 'drain'), untouched, { kind: 'reapply-active' }],
];

describe('recoveryAction', () => {
  for (const [name, journal, tokens, expected] of rows) {
    it(name, () => {
      assert.deepEqual(recoveryAction(journal, tokens), expected);
    });
  }

  it('never abandons a pending generation without re-applying the active token once the driver may have seen it', () => {
    const touched: JournalStep[] = ['applying', 'promoting', 'rolling-back'];
    for (const step of touched) {
      for (const mode of ['live', 'drain'] as const) {
        const action = recoveryAction(entry(step, mode), withPending);
        assert.notEqual(action.kind, 'abandon', `${step} ${mode}`);
        assert.notEqual(action.kind, 'forget', `${step} ${mode}`);
      }
    }
  });
});
