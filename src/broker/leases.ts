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
 * A VF's place in the table. A lease made or dropped rewrites its VF's slot rather than adding or
 * deleting a map entry, and the guest and PF indexes only ever gain VFs between sweeps: guests
 * starting and stopping all day would otherwise make V8 rebuild these hash tables every few hundred
 * changes, and each rebuilt table lives just long enough to reach the old generation, whose
 * collections stop the broker (decision 0010). `sweep` drops what no lease uses any more.
 */
interface Slot {
  lease: Lease | null;
  /** When the lease was made, counted in leases: the table reports leases in this order. */
  made: number;
}

/**
 * The table in memory, with the indexes that keep a guest start from costing in proportion to every
 * other lease on the host: by guest (started, release) and by PF (drain, status). Changed only by
 * `apply`, once a batch is on disk.
 */
class IndexedLeases {
  readonly #byVf = new Map<PciAddress, Slot>();
  /** The VFs that held a lease of a guest (or PF) since the last sweep; a VF's slot says whose it is now. */
  readonly #byGuest = new Map<string, Set<PciAddress>>();
  readonly #byPf = new Map<PciAddress, Set<PciAddress>>();
  #made = 0;

  constructor(leases: LeaseChanges) {
    this.apply(leases);
  }

  get(vf: PciAddress): Lease | undefined {
    return this.#byVf.get(vf)?.lease ?? undefined;
  }

  /** Every lease, in the order they were made. */
  values(): Lease[] {
    return this.#inOrder(this.#byVf.keys(), () => true);
  }

  /** The VFs a guest holds, in the order their leases were made. */
  ofGuest(guestUuid: string): PciAddress[] {
    return this.#inOrder(this.#byGuest.get(guestUuid), (l) => l.guestUuid === guestUuid).map((l) => l.vf);
  }

  /** The leases of a PF's VFs, in the order they were made. */
  ofPf(pf: PciAddress): Lease[] {
    return this.#inOrder(this.#byPf.get(pf), (l) => l.pf === pf);
  }

  /** Each VF a batch changed, to the lease it holds afterwards (null: none). */
  apply(changes: LeaseChanges): void {
    for (const [vf, lease] of changes) {
      const slot = this.#byVf.get(vf);
      if (slot === undefined) {
        if (lease !== null) this.#byVf.set(vf, { lease, made: this.#made++ });
      } else {
        // A lease that changes state keeps its place: the table reports leases in the order they were made.
        const kept = slot.lease?.guestUuid === lease?.guestUuid && slot.lease?.pf === lease?.pf;
        if (!kept) slot.made = this.#made++;
        slot.lease = lease;
      }
      if (lease === null) continue;
      addTo(this.#byGuest, lease.guestUuid, vf);
      addTo(this.#byPf, lease.pf, vf);
    }
  }

  /** Forgets the VFs that hold no lease, and each guest's and PF's VFs that are no longer theirs. */
  sweep(): void {
    for (const [vf, slot] of this.#byVf) if (slot.lease === null) this.#byVf.delete(vf);
    prune(this.#byGuest, (key, vf) => this.get(vf)?.guestUuid === key);
    prune(this.#byPf, (key, vf) => this.get(vf)?.pf === key);
  }

  #inOrder(vfs: Iterable<PciAddress> | undefined, keep: (lease: Lease) => boolean): Lease[] {
    const held: Slot[] = [];
    for (const vf of vfs ?? []) {
      const slot = this.#byVf.get(vf);
      if (slot !== undefined && slot.lease !== null && keep(slot.lease)) held.push(slot);
    }
    return held.sort((a, b) => a.made - b.made).map((slot) => slot.lease as Lease);
  }
}

function addTo<K>(index: Map<K, Set<PciAddress>>, key: K, vf: PciAddress): void {
  const vfs = index.get(key);
  if (vfs === undefined) index.set(key, new Set([vf]));
  else vfs.add(vf);
}

function prune<K>(index: Map<K, Set<PciAddress>>, holds: (key: K, vf: PciAddress) => boolean): void {
  for (const [key, vfs] of index) {
    for (const vf of vfs) if (!holds(key, vf)) vfs.delete(vf);
    if (vfs.size === 0) index.delete(key);
  }
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
    for (const [vf, lease] of this.all()) if (expired(lease)) this.delete(vf);
  }

  changes(): LeaseChanges {
    return this.#writes;
  }

  /** The VFs among `base` and those written to whose lease now passes `keep`. */
  #where(base: readonly PciAddress[], keep: (lease: Lease) => boolean): [PciAddress, Lease][] {
    const found: [PciAddress, Lease][] = [];
    const look = (vf: PciAddress) => {
      const lease = this.get(vf);
      if (lease !== undefined && keep(lease)) found.push([vf, lease]);
    };
    for (const vf of base) look(vf);
    for (const vf of this.#writes.keys()) if (!base.includes(vf)) look(vf);
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
  /** When a change next looks for expired pending leases to drop. */
  #sweepAt = Number.NEGATIVE_INFINITY;

  private constructor(journal: LeaseJournal, leases: Map<PciAddress, Lease>, options: LeaseTableOptions) {
    this.#journal = journal;
    this.#leases = new IndexedLeases(leases);
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
    return this.#leases.ofPf(pf).filter((l) => !this.#expired(l));
  }

  all(): Lease[] {
    return this.#leases.values().filter((l) => !this.#expired(l));
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
          // Looking costs a pass over every lease, so a change looks at most once per TTL: an
          // expired lease is already ignored by every reader, and dropping it only tidies.
          const sweep = this.#now() >= this.#sweepAt;
          if (sweep) {
            draft.dropExpired((lease) => this.#expired(lease));
            this.#sweepAt = this.#now() + this.#pendingTtlMs;
          }
          await this.#journal.commit(draft.changes(), () => draft.all().map(([, lease]) => lease));
          this.#leases.apply(draft.changes());
          if (sweep) this.#leases.sweep();
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
