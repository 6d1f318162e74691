/**
 * What the broker core needs of token rotation (DESIGN.md §5). The journaled state machine behind
 * it lives in this folder; the broker only starts rotations, tells it when leases change (a drain
 * rotation waits for the PF's guests to release their VFs) and asks for its state.
 */
import type { RotationState } from '../api.js';
import type { ManagedPf } from '../managed-pfs.js';
import type { PciAddress } from '../../pci/address.js';

export interface PfRotationStatus {
  readonly pf: PciAddress;
  readonly mode: 'live' | 'drain' | 'none';
  readonly activeGeneration: number;
  /** ISO 8601 time the active generation was created; null when the PF has no token. */
  readonly activeSince: string | null;
  /** The generation being applied, null when no rotation is under way. */
  readonly pendingGeneration: number | null;
  /** The journaled step the rotation is at, null when none is under way. */
  readonly step: string | null;
  /** Guests a drain rotation is waiting for. */
  readonly waitingFor: readonly { readonly uuid: string; readonly name: string }[];
  /** When a drain rotation gives up, ISO 8601; null otherwise. */
  readonly deadline: string | null;
}

export interface Rotator {
  /**
   * Rotates one PF's token: `done` when the new generation is active, `draining` when a drain
   * rotation waits for guests (it completes on its own, or is cancelled at its deadline),
   * `rolled-back` when the PF driver refused the new token. BUSY when a rotation of that PF is
   * already under way.
   */
  rotate(pf: ManagedPf): Promise<RotationState>;
  /** A guest released its VFs: drain rotations waiting for that PF re-check. */
  leasesChanged(): void;
  /** Resumes or rolls back every rotation the journal shows unfinished (broker start). */
  recover(): Promise<void>;
  status(pf: PciAddress): PfRotationStatus;
  /**
   * A rotation of the PF is running, or unfinished in the journal: its life cycle must not change
   * meanwhile. True from the moment rotate() accepts it, before its first journal step.
   */
  underWay(pf: PciAddress): boolean;
  /** Stops schedules and pending drains (broker shutdown); journaled state stays for recover(). */
  close(): Promise<void>;
}
