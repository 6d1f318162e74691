/**
 * The TokenStore semantics, written once over a versioned key-value backend. A backend only has to
 * keep numbered versions of one record per PF and refuse a write whose expected version is not the
 * latest (Vault KV v2 does this natively with `cas`; the file store emulates it). Everything about
 * generations, pending tokens and history lives here and in token-record.ts.
 */
import { VfbError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { PciAddress } from '../../pci/address.js';
import {
  abandoned,
  corrupt,
  firstRecord,
  historyOf,
  parseRecord,
  promoted,
  toPfTokens,
  withPending,
  type TokenRecord,
} from './token-record.js';
import type { GenerationActivation, PendingRef, PfTokens, TokenStore } from './token-store.js';

/**
 * The latest version of a PF's record: none (never written, version 0; or removed), a record to
 * parse, or one the backend could not even decode (`why` says so without quoting it).
 */
export type StoredVersion =
  | { readonly kind: 'absent'; readonly version: number }
  | { readonly kind: 'present'; readonly version: number; readonly data: unknown }
  | { readonly kind: 'unreadable'; readonly version: number; readonly why: string };

export interface RecordBackend {
  readonly description: string;
  /** Where a PF's record (at a revision, when known) lives, for messages: a Vault path or a file name. */
  where(pf: PciAddress, revision?: number): string;
  get(pf: PciAddress): Promise<StoredVersion>;
  /** Writes `data` as the next version if the latest is `expected`, else CONFLICT. Returns the new version. */
  put(pf: PciAddress, data: TokenRecord, expected: number): Promise<number>;
  /**
   * Removes the record and every older version if the latest is `expected`, else CONFLICT. It may
   * leave a tombstone (a removed version) that keeps version numbers from being reused.
   */
  remove(pf: PciAddress, expected: number): Promise<void>;
  /** PFs with a record, in any order, and those whose removal was interrupted (remove() finishes it). */
  keys(): Promise<PciAddress[]>;
  probe(): Promise<void>;
  close(): Promise<void>;
}

/** The CONFLICT every backend reports when its compare-and-set fails, so the message is the same everywhere. */
export function staleRevision(pf: PciAddress, where: string, expected: number): VfbError {
  const what =
    expected === 0 ? 'was created by another writer' : `changed since revision ${expected} was read`;
  return new VfbError('CONFLICT', `token record of PF ${pf} at ${where} ${what}; re-read and retry`, {
    details: { pf, revision: expected },
  });
}

export class RecordTokenStore implements TokenStore {
  readonly #backend: RecordBackend;
  readonly #logger: Logger;
  readonly #now: () => Date;

  constructor(backend: RecordBackend, logger: Logger, now: () => Date = () => new Date()) {
    this.#backend = backend;
    this.#logger = logger;
    this.#now = now;
  }

  get description(): string {
    return this.#backend.description;
  }

  async create(pf: PciAddress): Promise<PfTokens> {
    const current = await this.#backend.get(pf);
    if (current.kind !== 'absent') {
      const existing = this.#parse(pf, current);
      throw new VfbError(
        'CONFLICT',
        `PF ${pf} already has a token record (active generation ${existing.active.generation}); read it instead`,
        { details: { pf, revision: current.version } },
      );
    }
    const record = firstRecord(pf, this.#now());
    const revision = await this.#backend.put(pf, record, current.version);
    this.#logger.info({ pf, generation: 1, revision }, 'token record created');
    return toPfTokens(pf, record, revision);
  }

  async read(pf: PciAddress): Promise<PfTokens> {
    const { record, revision } = await this.#load(pf);
    return toPfTokens(pf, record, revision);
  }

  writePending(pf: PciAddress, revision: number): Promise<PfTokens> {
    return this.#transition(pf, revision, 'pending generation written', (r) =>
      withPending(pf, r, this.#now()),
    );
  }

  promote(pf: PciAddress, ref: PendingRef): Promise<PfTokens> {
    return this.#transition(pf, ref.revision, 'pending generation promoted', (r) =>
      promoted(pf, r, ref, this.#now()),
    );
  }

  abandonPending(pf: PciAddress, ref: PendingRef): Promise<PfTokens> {
    return this.#transition(pf, ref.revision, 'pending generation abandoned', (r) => abandoned(pf, r, ref));
  }

  async list(): Promise<PciAddress[]> {
    return (await this.#backend.keys()).sort();
  }

  async history(pf: PciAddress): Promise<GenerationActivation[]> {
    return historyOf((await this.#load(pf)).record);
  }

  async remove(pf: PciAddress, revision: number): Promise<void> {
    // No parse: remove is how an operator clears a corrupt record, whose revision STORE_CORRUPT reports.
    const current = await this.#backend.get(pf);
    if (current.kind === 'absent') {
      if (current.version === 0 || !(await this.#backend.keys()).includes(pf)) throw this.#notFound(pf);
      // A removal was interrupted after its tombstone: finish it, whatever revision the caller had.
      await this.#backend.remove(pf, current.version);
      this.#logger.info({ pf, revision: current.version }, 'interrupted removal of a token record finished');
      return;
    }
    if (current.version !== revision) throw staleRevision(pf, this.#backend.where(pf), revision);
    await this.#backend.remove(pf, revision);
    this.#logger.info({ pf, revision }, 'token record removed');
  }

  probe(): Promise<void> {
    return this.#backend.probe();
  }

  close(): Promise<void> {
    return this.#backend.close();
  }

  async #load(pf: PciAddress): Promise<{ record: TokenRecord; revision: number }> {
    const current = await this.#backend.get(pf);
    if (current.kind === 'absent') throw this.#notFound(pf);
    return { record: this.#parse(pf, current), revision: current.version };
  }

  #parse(pf: PciAddress, current: Exclude<StoredVersion, { kind: 'absent' }>): TokenRecord {
    const where = this.#backend.where(pf, current.version);
    if (current.kind === 'unreadable') return corrupt(pf, where, current.version, current.why);
    return parseRecord(pf, current.data, where, current.version);
  }

  async #transition(
    pf: PciAddress,
    revision: number,
    what: string,
    next: (record: TokenRecord) => TokenRecord,
  ): Promise<PfTokens> {
    const current = await this.#load(pf);
    if (current.revision !== revision) throw staleRevision(pf, this.#backend.where(pf), revision);
    const record = next(current.record);
    const written = await this.#backend.put(pf, record, revision);
    this.#logger.info(
      {
        pf,
        generation: record.active.generation,
        pending: record.pending?.generation ?? null,
        revision: written,
      },
      what,
    );
    return toPfTokens(pf, record, written);
  }

  #notFound(pf: PciAddress): VfbError {
    return new VfbError('NOT_FOUND', `PF ${pf} has no token record at ${this.#backend.where(pf)}`, {
      details: { pf },
    });
  }
}
