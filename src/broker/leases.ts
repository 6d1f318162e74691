/**
 * Leases: which guest holds which VF. A lease is created `pending` when PrepareGuest accepts a
 * device, becomes `active` at GuestStarted and is dropped at ReleaseGuest. Every change is on disk
 * (lease-journal.ts: a snapshot and a journal, under the state directory) before it is answered, so
 * a broker restart knows which VFs are in use — drain rotation and the `busy` verdict depend on it.
 *
 * libvirt runs `release` even after a failed `prepare`, so releasing a guest that holds nothing is
 * normal and not an error. A pending lease whose guest never started (QEMU failed after prepare and
 * libvirt's release never reached us) expires after pendingTtlMs.
 */
import { LeaseJournal, type Lease, type LeaseChanges } from './lease-journal.js';
import type { Logger } from '../log.js';
import type { PciAddress } from '../pci/address.js';

export type { Lease, LeaseState } from './lease-journal.js';

/**
 * The table as a change sees it: reads go to the current table until the first write, which copies
 * it. A call that changes nothing (a guest asking again for VFs it holds) costs no copy and no write.
 */
class Draft {
  readonly #base: ReadonlyMap<PciAddress, Lease>;
  #copy: Map<PciAddress, Lease> | null = null;
  /** The VFs written to; the journal records what each holds at the end. */
  readonly #touched = new Set<PciAddress>();

  constructor(base: ReadonlyMap<PciAddress, Lease>) {
    this.#base = base;
  }

  get changed(): boolean {
    return this.#copy !== null;
  }

  get(vf: PciAddress): Lease | undefined {
    return (this.#copy ?? this.#base).get(vf);
  }

  /** A snapshot to iterate, so writes during the loop are safe. */
  [Symbol.iterator](): IterableIterator<[PciAddress, Lease]> {
    return [...(this.#copy ?? this.#base)][Symbol.iterator]();
  }

  set(vf: PciAddress, lease: Lease): void {
    this.#writable().set(vf, lease);
    this.#touched.add(vf);
  }

  delete(vf: PciAddress): void {
    this.#writable().delete(vf);
    this.#touched.add(vf);
  }

  /** Drops the leases `lapsed` picks (expired pending ones). */
  dropWhere(lapsed: (lease: Lease) => boolean): void {
    const table = this.#writable();
    for (const [vf, lease] of table) {
      if (lapsed(lease)) {
        table.delete(vf);
        this.#touched.add(vf);
      }
    }
  }

  /** The table with every change applied. */
  result(): Map<PciAddress, Lease> {
    return this.#copy ?? new Map(this.#base);
  }

  /** Each VF written to and the lease it ends with (null: none). */
  changes(): LeaseChanges {
    const table = this.#copy ?? this.#base;
    return new Map([...this.#touched].map((vf) => [vf, table.get(vf) ?? null]));
  }

  #writable(): Map<PciAddress, Lease> {
    return (this.#copy ??= new Map(this.#base));
  }
}

type Change = (table: Draft) => void;

export interface LeaseTableOptions {
  /** The snapshot, `leases.json`; its journal sits next to it. */
  readonly file: string;
  readonly pendingTtlMs: number;
  /** Where a torn journal line dropped at load is reported. */
  readonly logger: Logger;
  readonly now?: () => number;
}

export class LeaseTable {
  readonly #journal: LeaseJournal;
  readonly #pendingTtlMs: number;
  readonly #now: () => number;
  #byVf: Map<PciAddress, Lease>;
  #waiting: { change: Change; resolve: () => void; reject: (err: unknown) => void }[] = [];
  #writing = false;

  private constructor(journal: LeaseJournal, leases: Map<PciAddress, Lease>, options: LeaseTableOptions) {
    this.#journal = journal;
    this.#byVf = leases;
    this.#pendingTtlMs = options.pendingTtlMs;
    this.#now = options.now ?? Date.now;
  }

  /** Loads the table from its files; missing files are an empty table, corrupt ones an error. */
  static async open(options: LeaseTableOptions): Promise<LeaseTable> {
    const { journal, leases } = await LeaseJournal.open(options.file, options.logger);
    return new LeaseTable(journal, leases, options);
  }

  /** The lease on a VF, ignoring an expired pending one. */
  get(vf: PciAddress): Lease | undefined {
    const lease = this.#byVf.get(vf);
    return lease && !this.#expired(lease) ? lease : undefined;
  }

  /** Live leases of one PF (drain rotation waits for these). */
  ofPf(pf: PciAddress): Lease[] {
    return [...this.#byVf.values()].filter((l) => l.pf === pf && !this.#expired(l));
  }

  all(): Lease[] {
    return [...this.#byVf.values()].filter((l) => !this.#expired(l));
  }

  /**
   * Records pending leases for a guest's VFs. Additive: the hook asks at `prepare` and again at
   * `start` (for VFs a hostdev network only chooses then), so the guest's other leases stay; a VF
   * the guest already holds keeps its lease. The caller has checked that no other guest holds these.
   */
  prepare(
    guestUuid: string,
    guestName: string,
    vfs: ReadonlyArray<{ vf: PciAddress; pf: PciAddress }>,
  ): Promise<void> {
    return this.#mutate((table) => {
      const since = this.#now();
      for (const { vf, pf } of vfs) {
        const held = table.get(vf);
        if (held?.guestUuid === guestUuid && !this.#expired(held)) continue;
        table.set(vf, { vf, pf, guestUuid, guestName, state: 'pending', since });
      }
    });
  }

  /** Confirms a guest's pending leases; resolves to how many. */
  async started(guestUuid: string): Promise<number> {
    let n = 0;
    await this.#mutate((table) => {
      const since = this.#now();
      for (const [vf, lease] of table) {
        if (lease.guestUuid === guestUuid && lease.state === 'pending' && !this.#expired(lease)) {
          table.set(vf, { ...lease, state: 'active', since });
          n++;
        }
      }
    });
    return n;
  }

  /** Drops every lease of a guest; resolves to the VFs released (none for a guest that held none). */
  async release(guestUuid: string): Promise<PciAddress[]> {
    const released: PciAddress[] = [];
    await this.#mutate((table) => {
      for (const [vf, lease] of table) {
        if (lease.guestUuid === guestUuid) {
          table.delete(vf);
          released.push(vf);
        }
      }
    });
    return released;
  }

  /**
   * Drops the active leases of guests that are not running (they stopped while the broker was
   * down, so their release never reached it); resolves to the guests dropped. Pending leases are
   * left to expire: their guest may be starting right now.
   */
  async reconcile(running: ReadonlySet<string>): Promise<string[]> {
    const gone = new Set<string>();
    await this.#mutate((table) => {
      for (const [vf, lease] of table) {
        if (lease.state === 'active' && !running.has(lease.guestUuid)) {
          table.delete(vf);
          gone.add(lease.guestName);
        }
      }
    });
    return [...gone];
  }

  /**
   * Applies a change to a copy of the table, writes what changed, and only then makes the copy
   * current: a failed write (disk full, read-only state directory) leaves memory on the old table,
   * and every change in it fails. Changes that arrive while a write is under way wait for
   * it and are then applied together and written once (group commit): a hundred guests starting
   * at once cost a few fsyncs, not a hundred in a row. Each change sees the ones before it.
   */
  #mutate(change: Change): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ change, resolve, reject });
      if (!this.#writing) void this.#commit();
    });
  }

  async #commit(): Promise<void> {
    this.#writing = true;
    while (this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0);
      const draft = new Draft(this.#byVf);
      for (const { change } of batch) change(draft);
      try {
        if (draft.changed) {
          draft.dropWhere((lease) => this.#expired(lease));
          const next = draft.result();
          await this.#journal.commit(draft.changes(), next);
          this.#byVf = next;
        }
        for (const { resolve } of batch) resolve();
      } catch (err) {
        for (const { reject } of batch) reject(err);
      }
    }
    this.#writing = false;
  }

  #expired(lease: Lease): boolean {
    return lease.state === 'pending' && this.#now() - lease.since > this.#pendingTtlMs;
  }
}
