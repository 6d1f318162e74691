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
 * The table in memory, with the indexes that keep a guest start from costing in proportion to every
 * other lease on the host: by guest (started, release), by PF (drain, status) and the pending ones
 * (expiry). Changed only by `apply`, once a batch is on disk.
 */
class IndexedLeases {
  readonly #byVf = new Map<PciAddress, Lease>();
  readonly #byGuest = new Map<string, Set<PciAddress>>();
  readonly #byPf = new Map<PciAddress, Set<PciAddress>>();
  readonly #pending = new Set<PciAddress>();

  constructor(leases: Iterable<Lease>) {
    for (const lease of leases) {
      this.#byVf.set(lease.vf, lease);
      this.#index(lease);
      if (lease.state === 'pending') this.#pending.add(lease.vf);
    }
  }

  get(vf: PciAddress): Lease | undefined {
    return this.#byVf.get(vf);
  }

  values(): IterableIterator<Lease> {
    return this.#byVf.values();
  }

  ofGuest(guestUuid: string): ReadonlySet<PciAddress> {
    return this.#byGuest.get(guestUuid) ?? NONE;
  }

  ofPf(pf: PciAddress): ReadonlySet<PciAddress> {
    return this.#byPf.get(pf) ?? NONE;
  }

  pending(): ReadonlySet<PciAddress> {
    return this.#pending;
  }

  /** Each VF a batch changed, to the lease it holds afterwards (null: none). */
  apply(changes: LeaseChanges): void {
    for (const [vf, lease] of changes) {
      const old = this.#byVf.get(vf);
      // A lease that changes state keeps its place, in the table and in its guest's and PF's
      // indexes: the broker reports leases in the order they were made.
      const moved = old !== undefined && (lease?.guestUuid !== old.guestUuid || lease.pf !== old.pf);
      if (moved) this.#unindex(old);
      this.#pending.delete(vf);
      if (lease === null) {
        this.#byVf.delete(vf);
        continue;
      }
      this.#byVf.set(vf, lease);
      if (old === undefined || moved) this.#index(lease);
      if (lease.state === 'pending') this.#pending.add(vf);
    }
  }

  #index(lease: Lease): void {
    addTo(this.#byGuest, lease.guestUuid, lease.vf);
    addTo(this.#byPf, lease.pf, lease.vf);
  }

  #unindex(lease: Lease): void {
    removeFrom(this.#byGuest, lease.guestUuid, lease.vf);
    removeFrom(this.#byPf, lease.pf, lease.vf);
  }
}

const NONE: ReadonlySet<PciAddress> = new Set();

function addTo<K>(index: Map<K, Set<PciAddress>>, key: K, vf: PciAddress): void {
  const vfs = index.get(key);
  if (vfs === undefined) index.set(key, new Set([vf]));
  else vfs.add(vf);
}

function removeFrom<K>(index: Map<K, Set<PciAddress>>, key: K, vf: PciAddress): void {
  const vfs = index.get(key);
  vfs?.delete(vf);
  if (vfs?.size === 0) index.delete(key);
}

/**
 * The table as a batch of changes sees it: its writes, over the table in memory, which they leave
 * alone until they are on disk. A call that changes nothing (a guest asking again for VFs it holds)
 * writes nothing.
 */
class Draft {
  readonly #base: IndexedLeases;
  /** Each VF written to and the lease it holds now (null: none): what the journal records. */
  readonly #writes = new Map<PciAddress, Lease | null>();

  constructor(base: IndexedLeases) {
    this.#base = base;
  }

  get changed(): boolean {
    return this.#writes.size > 0;
  }

  get(vf: PciAddress): Lease | undefined {
    const written = this.#writes.get(vf);
    return written === undefined ? this.#base.get(vf) : (written ?? undefined);
  }

  set(vf: PciAddress, lease: Lease): void {
    this.#writes.set(vf, lease);
  }

  delete(vf: PciAddress): void {
    this.#writes.set(vf, null);
  }

  /** A guest's leases, as an array: writes during the loop over it are safe. */
  ofGuest(guestUuid: string): [PciAddress, Lease][] {
    return this.#where(this.#base.ofGuest(guestUuid), (lease) => lease.guestUuid === guestUuid);
  }

  /** Every lease, as an array (for the rare change that must look at all of them). */
  all(): [PciAddress, Lease][] {
    const all: [PciAddress, Lease][] = [];
    for (const lease of this.#base.values()) {
      const now = this.get(lease.vf);
      if (now !== undefined) all.push([lease.vf, now]);
    }
    for (const [vf, lease] of this.#writes) {
      if (lease !== null && this.#base.get(vf) === undefined) all.push([vf, lease]);
    }
    return all;
  }

  /** Drops the pending leases `expired` picks. */
  dropExpired(expired: (lease: Lease) => boolean): void {
    for (const [vf, lease] of this.#where(this.#base.pending(), (l) => l.state === 'pending')) {
      if (expired(lease)) this.delete(vf);
    }
  }

  changes(): LeaseChanges {
    return this.#writes;
  }

  /** The VFs among `base` and those written to whose lease now passes `keep`. */
  #where(base: ReadonlySet<PciAddress>, keep: (lease: Lease) => boolean): [PciAddress, Lease][] {
    const found: [PciAddress, Lease][] = [];
    const look = (vf: PciAddress) => {
      const lease = this.get(vf);
      if (lease !== undefined && keep(lease)) found.push([vf, lease]);
    };
    for (const vf of base) look(vf);
    for (const vf of this.#writes.keys()) if (!base.has(vf)) look(vf);
    return found;
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
  readonly #leases: IndexedLeases;
  #waiting: { change: Change; resolve: () => void; reject: (err: unknown) => void }[] = [];
  #writing = false;

  private constructor(journal: LeaseJournal, leases: Map<PciAddress, Lease>, options: LeaseTableOptions) {
    this.#journal = journal;
    this.#leases = new IndexedLeases(leases.values());
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
    const lease = this.#leases.get(vf);
    return lease && !this.#expired(lease) ? lease : undefined;
  }

  /** Live leases of one PF (drain rotation waits for these). */
  ofPf(pf: PciAddress): Lease[] {
    const leases: Lease[] = [];
    for (const vf of this.#leases.ofPf(pf)) {
      const lease = this.#leases.get(vf);
      if (lease !== undefined && !this.#expired(lease)) leases.push(lease);
    }
    return leases;
  }

  all(): Lease[] {
    return [...this.#leases.values()].filter((l) => !this.#expired(l));
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
      for (const [vf, lease] of table.ofGuest(guestUuid)) {
        if (lease.state === 'pending' && !this.#expired(lease)) {
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
      for (const [vf] of table.ofGuest(guestUuid)) {
        table.delete(vf);
        released.push(vf);
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
      for (const [vf, lease] of table.all()) {
        if (lease.state === 'active' && !running.has(lease.guestUuid)) {
          table.delete(vf);
          gone.add(lease.guestName);
        }
      }
    });
    return [...gone];
  }

  /**
   * Applies a change to a draft over the table, writes what changed, and only then applies it to
   * the table: a failed write (disk full, read-only state directory) leaves memory on the old table,
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
      const draft = new Draft(this.#leases);
      try {
        // A change that throws fails its whole batch, which then writes nothing (the draft may hold
        // part of that change), and the table goes on serving the batches after it.
        for (const { change } of batch) change(draft);
        if (draft.changed) {
          draft.dropExpired((lease) => this.#expired(lease));
          await this.#journal.commit(draft.changes(), () => draft.all().map(([, lease]) => lease));
          this.#leases.apply(draft.changes());
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
