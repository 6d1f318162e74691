/**
 * Stand-ins around the rotator in rotation tests: a TokenStore that passes every write through a
 * gate (crash tests stop the world there) and remembers every token it returns (for the
 * no-secret-in-logs checks), a DefinitionSync and BrokerEvents that record what they were told.
 */
import type { Gate } from './sim-plugin.js';
import type { BrokerEvents, Verdict } from '../../../../src/broker/api.js';
import type { DefinitionSync, SyncReport } from '../../../../src/broker/rotation/index.js';
import type {
  GenerationActivation,
  PendingRef,
  PfTokens,
  TokenStore,
} from '../../../../src/broker/store/token-store.js';
import type { PciAddress } from '../../../../src/pci/address.js';

/** TokenStore calls pass through `gate` before and after each write; every token seen is remembered. */
export class GatedStore implements TokenStore {
  readonly #inner: TokenStore;
  readonly #gate: () => Gate;
  readonly #seen: (tokens: PfTokens) => PfTokens;

  constructor(inner: TokenStore, gate: () => Gate, seen: (tokens: PfTokens) => PfTokens) {
    this.#inner = inner;
    this.#gate = gate;
    this.#seen = seen;
  }

  get description(): string {
    return this.#inner.description;
  }

  async create(pf: PciAddress): Promise<PfTokens> {
    return this.#seen(await this.#inner.create(pf));
  }
  async read(pf: PciAddress): Promise<PfTokens> {
    return this.#seen(await this.#inner.read(pf));
  }
  writePending(pf: PciAddress, revision: number): Promise<PfTokens> {
    return this.#gated('store-write-pending', () => this.#inner.writePending(pf, revision));
  }
  promote(pf: PciAddress, ref: PendingRef): Promise<PfTokens> {
    return this.#gated('store-promote', () => this.#inner.promote(pf, ref));
  }
  abandonPending(pf: PciAddress, ref: PendingRef): Promise<PfTokens> {
    return this.#gated('store-abandon', () => this.#inner.abandonPending(pf, ref));
  }
  list(): Promise<PciAddress[]> {
    return this.#inner.list();
  }
  history(pf: PciAddress): Promise<GenerationActivation[]> {
    return this.#inner.history(pf);
  }
  remove(pf: PciAddress, revision: number): Promise<void> {
    return this.#inner.remove(pf, revision);
  }
  probe(): Promise<void> {
    return this.#inner.probe();
  }
  close(): Promise<void> {
    return this.#inner.close();
  }

  async #gated(what: string, call: () => Promise<PfTokens>): Promise<PfTokens> {
    await this.#gate()(`${what}:before`);
    const result = this.#seen(await call());
    await this.#gate()(`${what}:after`);
    return result;
  }
}

/** Records syncs; `failing` guests are reported failed, `throwing` makes the whole sync throw. */
export class RecordingSync implements DefinitionSync {
  readonly calls: Array<{ pf: PciAddress; generation: number }> = [];
  /** The guests a sync reports on, by name. */
  readonly #guests: readonly string[];
  failing: string[] = [];
  throwing = false;
  gate: Gate = () => Promise.resolve();

  constructor(guests: readonly string[]) {
    this.#guests = guests;
  }

  async syncGuests(pf: PciAddress, generation: number): Promise<SyncReport> {
    await this.gate('sync:before');
    this.calls.push({ pf, generation });
    if (this.throwing) throw new Error('virsh is not installed');
    const report = {
      synced: this.#guests.filter((g) => !this.failing.includes(g)),
      failed: this.failing.map((guest) => ({ guest, message: `virsh define failed for ${guest}` })),
    };
    await this.gate('sync:after');
    return report;
  }
}

export class RecordingEvents implements BrokerEvents {
  readonly rotated: Array<{ pf: PciAddress; generation: number }> = [];
  readonly refused: Array<{ guest: string; address: PciAddress; verdict: Verdict }> = [];
  #waiters: Array<() => void> = [];

  tokenRotated(pf: PciAddress, generation: number): void {
    this.rotated.push({ pf, generation });
    for (const wake of this.#waiters.splice(0)) wake();
  }

  guestRefused(guest: string, address: PciAddress, verdict: Verdict): void {
    this.refused.push({ guest, address, verdict });
  }

  /** Resolves once `count` TokenRotated events have been emitted in all. */
  async whenRotated(count: number): Promise<void> {
    while (this.rotated.length < count) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
}
