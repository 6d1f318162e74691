/**
 * What to do with a rotation the journal shows unfinished, as a pure function of the journal entry
 * and the store's record read afresh. The journal is written *before* each step, so a step it names
 * may or may not have happened; the store (one compare-and-set write per transition) says whether
 * the store's part did, and the table below says what the PF driver may hold at that point.
 *
 * Invariant: the PF driver only ever holds a token the store has — the active one, or the pending
 * one while it is being applied. The forward path keeps it by writing the pending generation
 * before applying it and by re-applying the active token before abandoning a pending one; recovery
 * keeps it by abandoning a pending token without touching the driver only when the journal proves
 * the driver never saw it (`writing-pending`, `draining`).
 *
 * | journal step    | store record (P = journal's generation)  | PF driver holds | action          |
 * |-----------------|------------------------------------------|-----------------|-----------------|
 * | writing-pending | pending newer than `from`, active `from` | active          | abandon         |
 * | writing-pending | anything else (the write never landed)   | active          | forget          |
 * | draining        | pending P                                | active          | abandon         |
 * | draining        | anything else                            | active          | forget          |
 * | applying, live  | pending P                                | active or P     | apply-pending   |
 * | applying, drain | pending P                                | active or P     | rollback        |
 * | applying        | anything else                            | unknown         | reapply-active  |
 * | promoting       | pending P                                | P               | promote         |
 * | promoting       | active P (promote landed)                | P               | sync            |
 * | promoting       | anything else                            | unknown         | reapply-active  |
 * | syncing         | active P                                 | P               | sync            |
 * | syncing         | anything else (a later rotation won)     | the store's     | forget          |
 * | rolling-back    | pending P                                | active or P     | rollback        |
 * | rolling-back    | anything else (abandon landed)           | active or P     | reapply-active  |
 *
 * Live rotations resume forward (re-setting a token is harmless while VFs are open); drain
 * rotations roll back, because applying means restarting the PF driver, and doing it with the
 * active token leaves guests' definitions valid. Every action ends with the journal entry removed
 * and the store without this rotation's pending generation, so each crash point converges; an
 * action that fails leaves the entry for the next attempt, whose read of the store picks the row.
 */
import type { JournalEntry } from './journal.js';
import type { PfTokens, TokenGeneration } from '../store/token-store.js';

export type RecoveryAction =
  /** Nothing to undo: remove the journal entry. */
  | { readonly kind: 'forget' }
  /** The driver never saw the pending token: drop it from the store. */
  | { readonly kind: 'abandon'; readonly pending: TokenGeneration }
  /** Live: (re-)apply the pending token, then promote it and announce it. */
  | { readonly kind: 'apply-pending'; readonly pending: TokenGeneration }
  /** The driver holds the pending token: promote it and announce it. */
  | { readonly kind: 'promote'; readonly pending: TokenGeneration }
  /** Promoted already: sync guests' definitions and announce the generation. */
  | { readonly kind: 'sync'; readonly generation: number }
  /** Re-apply the active token, then drop the pending one. */
  | { readonly kind: 'rollback'; readonly pending: TokenGeneration }
  /** The store moved on without this rotation: make sure the driver holds the store's active token. */
  | { readonly kind: 'reapply-active' };

export function recoveryAction(entry: JournalEntry, tokens: PfTokens): RecoveryAction {
  const pending = tokens.pending;
  const ours = pending !== null && pending.generation === entry.generation ? pending : null;
  const activeIsOurs = entry.generation !== null && tokens.active.generation === entry.generation;
  switch (entry.step) {
    case 'writing-pending':
      // The generation was not journaled yet: the pending one is ours if it was written on top of `from`.
      return pending !== null && tokens.active.generation === entry.from && pending.generation > entry.from
        ? { kind: 'abandon', pending }
        : { kind: 'forget' };
    case 'draining':
      return ours ? { kind: 'abandon', pending: ours } : { kind: 'forget' };
    case 'applying':
      if (!ours) return { kind: 'reapply-active' };
      return entry.mode === 'live'
        ? { kind: 'apply-pending', pending: ours }
        : { kind: 'rollback', pending: ours };
    case 'promoting':
      if (ours) return { kind: 'promote', pending: ours };
      return activeIsOurs
        ? { kind: 'sync', generation: tokens.active.generation }
        : { kind: 'reapply-active' };
    case 'syncing':
      return activeIsOurs ? { kind: 'sync', generation: tokens.active.generation } : { kind: 'forget' };
    case 'rolling-back':
      return ours ? { kind: 'rollback', pending: ours } : { kind: 'reapply-active' };
  }
}
