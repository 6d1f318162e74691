/**
 * Where the broker keeps each PF's VF tokens. Two implementations answer this interface: VaultStore
 * (KV v2, production) and FileStore (one directory, for the demo and hosts without Vault); the
 * contract suite in test/contract/token-store.contract.ts runs against both and against a real Vault.
 *
 * A PF's record holds the active generation, at most one pending generation and a short history.
 * Every state transition is one compare-and-set write of the whole record, so a broker killed between
 * any two calls finds either the old or the new record, never a mix: the rotation journal only has
 * to remember which step it was at, and `read()` tells it whether that step happened.
 *
 * Tokens are generated here (crypto.randomUUID: a CSPRNG UUIDv4), so a token the PF driver is given
 * is always one the store already holds. Nothing but `read()` and the writes that return PfTokens
 * ever returns a token.
 */
import type { PciAddress } from '../../pci/address.js';

export interface TokenGeneration {
  /** 1 for the PF's first token, counting up; a number is never reused, even after an abandon. */
  readonly generation: number;
  /** A lower-case UUIDv4. */
  readonly token: string;
  /** ISO 8601, when this generation was generated. */
  readonly createdAt: string;
}

export interface PfTokens {
  readonly pf: PciAddress;
  readonly active: TokenGeneration;
  /** The next generation while a rotation is under way, else null. */
  readonly pending: TokenGeneration | null;
  /** The record's version; pass it back to a write so that a concurrent writer is detected. */
  readonly revision: number;
}

/** One activation, for `token status` and audits: never a token. */
export interface GenerationActivation {
  readonly generation: number;
  readonly activatedAt: string;
}

/** Which pending generation a promote or abandon is about, and the revision it was read at. */
export interface PendingRef {
  readonly revision: number;
  readonly generation: number;
}

export interface TokenStore {
  /** For logs and errors: the Vault address and path, or the directory. */
  readonly description: string;

  /**
   * Creates generation 1 for a PF that has no record. CONFLICT when it has one (another broker or
   * the CLI may have won the race: read() it).
   */
  create(pf: PciAddress): Promise<PfTokens>;
  /** The PF's record. NOT_FOUND when it has none; STORE_CORRUPT when the stored record is malformed. */
  read(pf: PciAddress): Promise<PfTokens>;
  /**
   * Generates the next generation as pending. CONFLICT when the record is no longer at `revision`;
   * BUSY when a pending generation exists (promote or abandon it first: it may already be applied).
   */
  writePending(pf: PciAddress, revision: number): Promise<PfTokens>;
  /** Makes the pending generation active. CONFLICT on a stale revision or another pending generation. */
  promote(pf: PciAddress, ref: PendingRef): Promise<PfTokens>;
  /** Drops the pending generation (rotation rolled back). Same errors as promote. */
  abandonPending(pf: PciAddress, ref: PendingRef): Promise<PfTokens>;
  /** PFs that have a record, sorted. An interrupted remove() may leave one listed until it is re-run. */
  list(): Promise<PciAddress[]>;
  /** Activations, oldest first, capped to the last HISTORY_LIMIT. */
  history(pf: PciAddress): Promise<GenerationActivation[]>;
  /** Deletes the PF's record and every stored token of it (an explicit admin operation). */
  remove(pf: PciAddress, revision: number): Promise<void>;
  /** Throws the typed error that explains why the store cannot be used right now (Status, doctor). */
  probe(): Promise<void>;
  /** Stops background work (token renewal) and releases connections. */
  close(): Promise<void>;
}

/** How many activations a record keeps. */
export const HISTORY_LIMIT = 32;
