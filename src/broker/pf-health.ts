/**
 * Watches the PFs after start-up. A PF driver can die (a crash, an OOM kill), and a PF can fail to
 * come up at start (Vault unreachable, the device busy). Every interval each PF's life-cycle
 * status is read: an `up` PF whose steps are no longer all done becomes `degraded` — PrepareGuest
 * then answers `pf-not-ready` for its VFs instead of letting a guest start against a dead driver —
 * and a degraded PF is brought up again, unless that would take VFs from guests holding them. A PF
 * whose life cycle the broker is changing meanwhile (ManagedPfs.change) is left alone.
 */
import { bringUpOne, type BringUpDeps } from './bring-up.js';
import type { LeaseTable } from './leases.js';
import { pluginPfConfig, type ManagedPf, type ManagedPfs } from './managed-pfs.js';
import { isVfbError, toVfbError } from '../errors.js';
import { pfStatus, pfUp } from '../plugins/lifecycle/pf.js';

export interface PfHealthDeps extends BringUpDeps {
  readonly pfs: ManagedPfs;
  readonly leases: LeaseTable;
  readonly intervalMs: number;
}

export class PfHealth {
  readonly #d: PfHealthDeps;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(deps: PfHealthDeps) {
    this.#d = deps;
  }

  start(): void {
    this.#timer = setInterval(() => void this.check(), this.#d.intervalMs);
    this.#timer.unref();
  }

  /** One round over every PF; a round still running is joined, never overlapped. */
  check(): Promise<void> {
    this.#running ??= this.#round().finally(() => (this.#running = null));
    return this.#running;
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  async #round(): Promise<void> {
    for (const managed of this.#d.pfs.all()) {
      // A PF the broker is changing (SetNumVfs, pf up or down) is half changed on purpose; its
      // change records the outcome.
      if (this.#d.pfs.changing(managed.entry.address)) continue;
      if (managed.state === 'up') await this.#watch(managed);
      else if (managed.state === 'degraded') await this.#repair(managed);
    }
  }

  async #watch(managed: ManagedPf): Promise<void> {
    const pf = managed.entry.address;
    const changes = this.#d.pfs.changesStarted(pf);
    try {
      const status = await pfStatus(
        this.#d.context,
        managed.plugin,
        pluginPfConfig(managed.entry, managed.wantedVfs),
      );
      const undone = status.steps.find((s) => !s.done);
      // Only a PF still `up` and left alone is marked: a rotation or a change of its life cycle may
      // have started (and even ended) while its status was read.
      if (undone && managed.state === 'up' && this.#d.pfs.changesStarted(pf) === changes) {
        managed.state = 'degraded';
        managed.lastError = `${undone.step}: ${undone.detail}`;
        this.#d.logger.error(
          { audit: true, event: 'pf-degraded', pf, step: undone.step, detail: undone.detail },
          'PF no longer up',
        );
      }
    } catch (err) {
      this.#d.logger.warn({ err, pf }, 'cannot read the PF’s status');
    }
  }

  /** A repair is a change of the PF like any other: one at a time, and guests wait for it. */
  async #repair(managed: ManagedPf): Promise<void> {
    const pf = managed.entry.address;
    await this.#d.pfs
      .change(pf, async () => {
        if (this.#d.leases.ofPf(pf).length > 0) {
          const config = pluginPfConfig(managed.entry, managed.wantedVfs);
          const { plan } = await pfUp(this.#d.context, managed.plugin, config, null, {
            dryRun: true,
          }).catch(() => ({ plan: null }));
          // Bringing it up would take VFs from the guests holding them: an operator decides (`vfbroker pf up`).
          if (plan === null || plan.drain.required) return;
        }
        this.#d.logger.info({ pf, lastError: managed.lastError }, 'bringing a degraded PF up again');
        await bringUpOne(this.#d.pfs, managed, this.#d);
      })
      .catch((err: unknown) => {
        // BUSY: a change began since this round looked; that change records the outcome.
        if (isVfbError(err, 'BUSY')) return;
        this.#d.logger.error({ err: toVfbError(err), pf }, 'PF repair failed');
      });
  }
}
