/**
 * Token rotation as a journaled state machine per PF (DESIGN.md §5):
 *
 *   writing-pending → [draining] → applying → promoting → syncing → (entry removed)
 *                                      └─ PF driver refuses → rolling-back → (entry removed)
 *
 * Each step is written to the journal before it is taken, and each store transition is one
 * compare-and-set write that returns the record, which goes straight into the token cache, so
 * PrepareGuest sees a promoted generation at once. Live rotation replaces the token in the running
 * PF driver; drain rotation first waits for the PF's leases to go (the PF is `rotating` meanwhile,
 * so PrepareGuest answers `rotating`) and then restarts the driver. recovery.ts says how a broker
 * started after a crash at any step converges; rotate() and the periodic check resume an unfinished
 * entry the same way, so a rotation that failed on an unreachable store finishes once it is back.
 *
 * The PF is `rotating` whenever its driver may hold a token other than the store's active one, or
 * a drain is under way, and back to `up` as soon as that is over; other states are left alone.
 */
import type { Rotator, PfRotationStatus } from './rotator.js';
import type { DefinitionSync } from './definition-sync.js';
import { waitForDrain, type DrainOutcome, type DrainWait } from './drain.js';
import { RotationJournal, type JournalEntry, type JournalStep } from './journal.js';
import { recoveryAction } from './recovery.js';
import { isDue, PeriodicCheck } from './schedule.js';
import type { BrokerEvents, RotationState } from '../api.js';
import type { LeaseTable } from '../leases.js';
import { pluginPfConfig, type ManagedPf, type ManagedPfs } from '../managed-pfs.js';
import { systemClock, type Clock } from '../store/clock.js';
import type { TokenCache } from '../store/token-cache.js';
import type { PfTokens, TokenGeneration, TokenStore } from '../store/token-store.js';
import { VfbError, isVfbError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { PciAddress } from '../../pci/address.js';
import type { PluginContext } from '../../plugins/contract.js';
import { restartDriver, rotateLive } from '../../plugins/lifecycle/pf.js';

export interface RotatorDeps {
  readonly store: TokenStore;
  readonly tokens: TokenCache;
  readonly leases: Pick<LeaseTable, 'ofPf'>;
  readonly pfs: ManagedPfs;
  readonly pluginContext: PluginContext;
  /** Private directory for the journal, under the broker's state directory. */
  readonly journalDirectory: string;
  readonly events: Pick<BrokerEvents, 'tokenRotated'>;
  /** Without one, guests' definitions are left to `vfbroker guest sync`. */
  readonly definitionSync?: DefinitionSync;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** How often token ages (and stalled rotations) are checked. */
  readonly checkIntervalMs?: number;
}

export const DEFAULT_CHECK_INTERVAL_MS = 60_000;
/** writePending attempts when another writer changed the record between our read and our write. */
const WRITE_ATTEMPTS = 3;

/** A PF's slot while something works on its rotation: at most one per PF. */
interface Run {
  drain: DrainWait | null;
}

/** One rotation being carried out, and the journal entry it has reached. */
interface Rotation {
  readonly managed: ManagedPf;
  readonly pf: PciAddress;
  readonly run: Run;
  readonly log: Logger;
  entry: JournalEntry;
}

export class JournaledRotator implements Rotator {
  readonly #d: RotatorDeps;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #journal: RotationJournal;
  readonly #check: PeriodicCheck;
  readonly #runs = new Map<PciAddress, Run>();
  readonly #settled = new Set<Promise<void>>();
  /** The active generation last seen per PF, for status(): never its token. */
  readonly #known = new Map<PciAddress, { readonly generation: number; readonly createdAt: string }>();
  #closed = false;

  constructor(deps: RotatorDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#logger = deps.logger;
    this.#journal = new RotationJournal(deps.journalDirectory);
    this.#check = new PeriodicCheck(this.#clock, deps.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS, (now) =>
      this.#checkAll(now),
    );
  }

  async rotate(managed: ManagedPf): Promise<RotationState> {
    const pf = managed.entry.address;
    if (managed.plugin.manifest.rotation === 'none') {
      throw new VfbError(
        'INVALID_ARGUMENT',
        `PF ${pf} (plugin ${managed.plugin.manifest.name}) has no token to rotate: its VFs open without one`,
      );
    }
    if (this.#closed) {
      throw new VfbError('UNAVAILABLE', `the broker is shutting down; PF ${pf} was not rotated`);
    }
    const busy = this.#busy(pf);
    if (busy) throw busy;
    // A change of the PF's life cycle would apply a token of its own (bring-up): one or the other.
    if (this.#d.pfs.changing(pf)) {
      throw new VfbError(
        'BUSY',
        `PF ${pf} is being changed (a new VF count, pf up, pf down or a repair); rotate it when that is done`,
        { hint: `see \`vfbroker pf status ${pf}\`` },
      );
    }
    return new Promise<RotationState>((resolve, reject) => {
      // A drain rotation answers `draining` as soon as it waits, and finishes in the background.
      this.#exclusive(pf, async (run) => {
        const unfinished = this.#journal.get(pf);
        if (unfinished) await this.#resume(managed, run, unfinished);
        return this.#rotate(managed, run, () => resolve('draining'));
      }).then(resolve, reject);
    });
  }

  underWay(pf: PciAddress): boolean {
    return this.#runs.has(pf) || this.#journal.get(pf) !== undefined;
  }

  leasesChanged(): void {
    for (const run of this.#runs.values()) run.drain?.recheck();
  }

  async recover(): Promise<void> {
    const entries = await this.#journal.load();
    await Promise.all(entries.map((entry) => this.#tryResume(entry)));
    if (!this.#closed) this.#check.start();
  }

  status(pf: PciAddress): PfRotationStatus {
    const managed = this.#d.pfs.get(pf);
    if (!managed) {
      throw new VfbError('NOT_FOUND', `PF ${pf} is not managed by vfbroker`, {
        hint: 'list the PFs with `vfbroker pf status`',
      });
    }
    const known = this.#known.get(pf);
    const entry = this.#journal.get(pf);
    const waiting = this.#runs.get(pf)?.drain ? this.#d.leases.ofPf(pf) : [];
    const guests = new Map(waiting.map((l) => [l.guestUuid, { uuid: l.guestUuid, name: l.guestName }]));
    return {
      pf,
      mode: managed.plugin.manifest.rotation,
      activeGeneration: known?.generation ?? 0,
      activeSince: known?.createdAt ?? null,
      pendingGeneration: entry?.generation ?? null,
      step: entry?.step ?? null,
      waitingFor: [...guests.values()],
      deadline: entry?.deadline ?? null,
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#check.stop();
    for (const run of this.#runs.values()) run.drain?.close();
    await Promise.all(this.#settled);
  }

  // ---- the forward path -------------------------------------------------------------------

  async #rotate(managed: ManagedPf, run: Run, onDraining: () => void): Promise<RotationState> {
    const pf = managed.entry.address;
    if (managed.state !== 'up') {
      throw new VfbError(
        'UNAVAILABLE',
        `PF ${pf} is ${managed.state}, not up: its token cannot be rotated now`,
        {
          hint: `bring it up with \`vfbroker pf up ${pf}\`, then rotate again`,
        },
      );
    }
    const current = await this.#d.tokens.get(pf);
    this.#remember(current);
    const r: Rotation = {
      managed,
      pf,
      run,
      log: this.#logger.child({ pf }),
      entry: {
        pf,
        mode: managed.plugin.manifest.rotation === 'live' ? 'live' : 'drain',
        step: 'writing-pending',
        from: current.active.generation,
        generation: null,
        startedAt: this.#iso(this.#clock.now()),
        deadline: null,
      },
    };
    r.log.info({ mode: r.entry.mode, from: current.active.generation }, 'token rotation started');
    const tokens = await this.#writePending(r, current);
    const pending = tokens.pending;
    if (pending === null) {
      throw new VfbError('INTERNAL', `the token store wrote no pending generation for PF ${pf}`);
    }
    r.entry = { ...r.entry, generation: pending.generation };

    if (r.entry.mode === 'drain') {
      const deadline = this.#clock.now() + managed.entry.rotation.drainTimeoutMs;
      await this.#step(r, 'draining', { deadline: this.#iso(deadline) });
      this.#hold(managed);
      const outcome = await this.#drain(r, deadline, onDraining);
      // Shutdown: the journal keeps `draining`, and recovery cancels it at the next start.
      if (outcome === 'closed') return 'draining';
      if (outcome === 'deadline') {
        r.log.warn(
          { generation: pending.generation, waitedMs: managed.entry.rotation.drainTimeoutMs },
          `drain deadline passed with guests still holding VFs: rotation cancelled, the PF keeps generation ${tokens.active.generation}`,
        );
        return this.#abandon(r, tokens, pending);
      }
    }
    return this.#applyPending(r, tokens, pending);
  }

  /**
   * Writes the pending generation. A CONFLICT (another writer changed the record since it was
   * read) is re-read: a pending generation there is that writer's rotation (BUSY), anything else
   * is retried. CONFLICT and BUSY mean nothing was written, so the journal entry goes too; any
   * other failure may hide a write that landed, and the entry stays for recovery to look.
   */
  async #writePending(r: Rotation, read: PfTokens): Promise<PfTokens> {
    let tokens = read;
    for (let attempt = 1; ; attempt++) {
      await this.#step(r, 'writing-pending', { from: tokens.active.generation });
      try {
        const next = await this.#d.store.writePending(r.pf, tokens.revision);
        this.#remember(next);
        return next;
      } catch (err) {
        let failure = err;
        if (isVfbError(err, 'CONFLICT')) {
          tokens = await this.#d.store.read(r.pf);
          this.#remember(tokens);
          if (tokens.pending === null && attempt < WRITE_ATTEMPTS) continue;
          if (tokens.pending !== null) {
            failure = new VfbError(
              'BUSY',
              `PF ${r.pf} has pending generation ${tokens.pending.generation} from another broker or tool; rotate again once it is promoted or abandoned`,
            );
          }
        }
        if (isVfbError(failure, 'CONFLICT') || isVfbError(failure, 'BUSY')) await this.#journal.remove(r.pf);
        throw failure;
      }
    }
  }

  async #drain(r: Rotation, deadline: number, onDraining: () => void): Promise<DrainOutcome> {
    const drained = (): boolean => this.#d.leases.ofPf(r.pf).length === 0;
    if (drained()) return 'drained';
    if (this.#closed) return 'closed';
    onDraining();
    const guests = [...new Set(this.#d.leases.ofPf(r.pf).map((l) => l.guestName))];
    r.log.info(
      { generation: r.entry.generation, guests, deadline: r.entry.deadline },
      'waiting for the guests of the PF to release their VFs',
    );
    const wait = waitForDrain(drained, deadline, this.#clock);
    r.run.drain = wait;
    try {
      return await wait.outcome;
    } finally {
      r.run.drain = null;
    }
  }

  async #applyPending(r: Rotation, tokens: PfTokens, pending: TokenGeneration): Promise<RotationState> {
    await this.#step(r, 'applying', { generation: pending.generation });
    this.#hold(r.managed);
    try {
      await this.#applyToken(r, pending.token);
    } catch (err) {
      r.log.warn(
        { err, generation: pending.generation },
        `the PF driver refused generation ${pending.generation}; rolling back`,
      );
      return this.#rollBack(r, tokens, pending);
    }
    r.log.info({ generation: pending.generation }, 'new token applied to the PF driver');
    return this.#promote(r, tokens, pending);
  }

  async #promote(r: Rotation, tokens: PfTokens, pending: TokenGeneration): Promise<RotationState> {
    await this.#step(r, 'promoting');
    this.#remember(
      await this.#d.store.promote(r.pf, { revision: tokens.revision, generation: pending.generation }),
    );
    this.#release(r.managed);
    return this.#announce(r, pending.generation);
  }

  /** Guests' definitions, then TokenRotated; a definition that cannot be synced never undoes the rotation. */
  async #announce(r: Rotation, generation: number): Promise<RotationState> {
    await this.#step(r, 'syncing', { generation });
    this.#release(r.managed);
    await this.#syncGuests(r, generation);
    this.#d.events.tokenRotated(r.pf, generation);
    await this.#journal.remove(r.pf);
    r.log.info({ generation }, `token rotated: generation ${generation} is active`);
    return 'done';
  }

  async #syncGuests(r: Rotation, generation: number): Promise<void> {
    const sync = this.#d.definitionSync;
    if (!sync) {
      r.log.info(
        { generation },
        'guest definitions are not synced by the broker: run `vfbroker guest sync` for the guests of this PF',
      );
      return;
    }
    try {
      const report = await sync.syncGuests(r.pf, generation);
      for (const f of report.failed) {
        r.log.warn(
          { generation, guest: f.guest, reason: f.message },
          `definition of guest ${f.guest} not synced; run: vfbroker guest sync ${f.guest}`,
        );
      }
      r.log.info(
        { generation, synced: report.synced, failed: report.failed.length },
        'guest definitions synced',
      );
    } catch (err) {
      r.log.error(
        { err, generation },
        'guest definitions not synced; the new token stays active: run `vfbroker guest sync` for the guests of this PF',
      );
    }
  }

  /** The PF driver gets the active token back before the pending one leaves the store. */
  async #rollBack(r: Rotation, tokens: PfTokens, pending: TokenGeneration): Promise<RotationState> {
    await this.#step(r, 'rolling-back', { generation: pending.generation });
    this.#hold(r.managed);
    await this.#applyToken(r, tokens.active.token);
    this.#remember(
      await this.#d.store.abandonPending(r.pf, { revision: tokens.revision, generation: pending.generation }),
    );
    await this.#journal.remove(r.pf);
    this.#release(r.managed);
    r.log.warn(
      { generation: pending.generation, active: tokens.active.generation },
      `rotation rolled back: generation ${pending.generation} abandoned, the PF driver keeps generation ${tokens.active.generation}`,
    );
    return 'rolled-back';
  }

  /** Drops a pending generation the PF driver never saw. */
  async #abandon(r: Rotation, tokens: PfTokens, pending: TokenGeneration): Promise<RotationState> {
    this.#remember(
      await this.#d.store.abandonPending(r.pf, { revision: tokens.revision, generation: pending.generation }),
    );
    await this.#journal.remove(r.pf);
    this.#release(r.managed);
    r.log.info(
      { generation: pending.generation, active: tokens.active.generation },
      `pending generation ${pending.generation} abandoned before it reached the PF driver`,
    );
    return 'cancelled';
  }

  // ---- recovery ---------------------------------------------------------------------------

  /** Resumes an unfinished entry in the PF's slot; a failure is logged and the entry waits for the next check. */
  async #tryResume(entry: JournalEntry): Promise<void> {
    const managed = this.#d.pfs.get(entry.pf);
    if (!managed) {
      this.#logger.warn(
        { pf: entry.pf, step: entry.step },
        'the rotation journal names a PF this broker does not manage; the entry stays until it does',
      );
      return;
    }
    if (this.#busy(entry.pf)) return;
    await this.#exclusive(entry.pf, (run) => this.#resume(managed, run, entry)).catch(() => undefined);
  }

  async #resume(managed: ManagedPf, run: Run, entry: JournalEntry): Promise<void> {
    const r: Rotation = { managed, pf: entry.pf, run, log: this.#logger.child({ pf: entry.pf }), entry };
    // Until this converges the driver may hold a token PrepareGuest would not accept.
    this.#hold(managed);
    const tokens = await this.#d.store.read(entry.pf);
    this.#remember(tokens);
    const action = recoveryAction(entry, tokens);
    r.log.info(
      { step: entry.step, generation: entry.generation, action: action.kind },
      'resuming an interrupted rotation',
    );
    switch (action.kind) {
      case 'forget':
        await this.#journal.remove(entry.pf);
        this.#release(managed);
        return;
      case 'abandon':
        await this.#abandon(r, tokens, action.pending);
        return;
      case 'apply-pending':
        await this.#applyPending(r, tokens, action.pending);
        return;
      case 'promote':
        await this.#promote(r, tokens, action.pending);
        return;
      case 'sync':
        await this.#announce(r, action.generation);
        return;
      case 'rollback':
        await this.#rollBack(r, tokens, action.pending);
        return;
      case 'reapply-active':
        await this.#applyToken(r, tokens.active.token);
        await this.#journal.remove(entry.pf);
        this.#release(managed);
        r.log.info(
          { active: tokens.active.generation },
          `the PF driver was given the active generation ${tokens.active.generation} again`,
        );
        return;
    }
  }

  // ---- the periodic check -----------------------------------------------------------------

  async #checkAll(now: number): Promise<void> {
    await Promise.all(this.#d.pfs.all().map((m) => this.#checkPf(m, now)));
  }

  /** Re-checks a waiting drain, resumes a stalled rotation, or rotates a token that is too old. */
  async #checkPf(managed: ManagedPf, now: number): Promise<void> {
    const pf = managed.entry.address;
    const run = this.#runs.get(pf);
    if (this.#closed || managed.plugin.manifest.rotation === 'none') return;
    if (run) {
      // A pending lease that expires sends no event.
      run.drain?.recheck();
      return;
    }
    const unfinished = this.#journal.get(pf);
    if (unfinished) return this.#tryResume(unfinished);
    const maxAgeMs = managed.entry.rotation.maxAgeMs;
    if (maxAgeMs === null || managed.state !== 'up') return;
    let tokens: PfTokens;
    try {
      tokens = await this.#d.tokens.get(pf);
    } catch (err) {
      this.#logger.warn({ err, pf }, 'cannot read the PF’s token to check its age; next check in a while');
      return;
    }
    this.#remember(tokens);
    if (!isDue(tokens.active.createdAt, maxAgeMs, now)) return;
    this.#logger.info(
      { pf, generation: tokens.active.generation, since: tokens.active.createdAt, maxAgeMs },
      'token reached its maximum age: rotating',
    );
    // A failed rotation has been logged where it failed, with its step.
    await this.rotate(managed).catch(() => undefined);
  }

  // ---- helpers ----------------------------------------------------------------------------

  #busy(pf: PciAddress): VfbError | null {
    if (!this.#runs.has(pf)) return null;
    const step = this.#journal.get(pf)?.step;
    return new VfbError(
      'BUSY',
      `a rotation of PF ${pf} is already under way${step ? ` (step ${step})` : ''}`,
      {
        hint: `watch it with \`vfbroker token status ${pf}\``,
      },
    );
  }

  /** Runs `body` in the PF's slot; a failure is logged once here, with the step the journal keeps. */
  #exclusive<T>(pf: PciAddress, body: (run: Run) => Promise<T>): Promise<T> {
    const run: Run = { drain: null };
    this.#runs.set(pf, run);
    const work = (async () => {
      try {
        return await body(run);
      } catch (err) {
        const step = this.#journal.get(pf)?.step ?? null;
        this.#logger.error(
          { err, pf, step },
          step === null
            ? 'token rotation failed; nothing was changed'
            : `token rotation stopped at step ${step}; the next check or broker start resumes it`,
        );
        throw err;
      } finally {
        this.#runs.delete(pf);
      }
    })();
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.#settled.add(settled);
    void settled.then(() => this.#settled.delete(settled));
    return work;
  }

  async #step(
    r: Rotation,
    step: JournalStep,
    changes: Partial<Pick<JournalEntry, 'from' | 'generation' | 'deadline'>> = {},
  ): Promise<void> {
    r.entry = { ...r.entry, deadline: null, ...changes, step };
    await this.#journal.write(r.entry);
  }

  #applyToken(r: Rotation, token: string): Promise<void> {
    const { plugin, entry, wantedVfs } = r.managed;
    const apply = plugin.manifest.rotation === 'live' ? rotateLive : restartDriver;
    return apply(this.#d.pluginContext, plugin, pluginPfConfig(entry, wantedVfs), token);
  }

  /** Every record the store returns goes to the cache, so PrepareGuest judges by it at once. */
  #remember(tokens: PfTokens): void {
    this.#d.tokens.set(tokens);
    this.#known.set(tokens.pf, { generation: tokens.active.generation, createdAt: tokens.active.createdAt });
  }

  #hold(managed: ManagedPf): void {
    if (managed.state === 'up') managed.state = 'rotating';
  }

  #release(managed: ManagedPf): void {
    if (managed.state === 'rotating') managed.state = 'up';
  }

  #iso(ms: number): string {
    return new Date(ms).toISOString();
  }
}
