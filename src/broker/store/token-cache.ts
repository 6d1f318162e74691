/**
 * The broker's memory of each PF's tokens, so PrepareGuest never waits for Vault: the store is read
 * once per PF generation, and a hundred guests starting at once share that one read. The broker
 * hands every state it writes (create, writePending, promote, abandon all return it) to `set()`, so
 * its own rotations cost no read at all; `invalidate()` is for changes it learns of otherwise.
 * Failed reads are not cached: the next caller tries again.
 */
import type { PciAddress } from '../../pci/address.js';
import type { PfTokens, TokenGeneration, TokenStore } from './token-store.js';

export class TokenCache {
  readonly #store: TokenStore;
  /** A settled promise is a cached value; a pending one is a read every caller joins. */
  readonly #entries = new Map<PciAddress, Promise<PfTokens>>();

  constructor(store: TokenStore) {
    this.#store = store;
  }

  /** The PF's tokens, from memory or from one shared store read. */
  get(pf: PciAddress): Promise<PfTokens> {
    const cached = this.#entries.get(pf);
    if (cached) return cached;
    const read = this.#store.read(pf);
    this.#entries.set(pf, read);
    // Only this read's own entry is dropped: an invalidate() or set() meanwhile has replaced it.
    read.catch(() => {
      if (this.#entries.get(pf) === read) this.#entries.delete(pf);
    });
    return read;
  }

  /** The PF's active generation, the one guests must present. */
  async active(pf: PciAddress): Promise<TokenGeneration> {
    return (await this.get(pf)).active;
  }

  /** Remembers a state the broker has just written, replacing whatever was cached or being read. */
  set(tokens: PfTokens): void {
    this.#entries.set(tokens.pf, Promise.resolve(tokens));
  }

  /** Forgets the PF; the next get() reads the store. A read already under way is not cached. */
  invalidate(pf: PciAddress): void {
    this.#entries.delete(pf);
  }

  clear(): void {
    this.#entries.clear();
  }
}
