/**
 * The last step of a rotation: writing the new token into the persistent definitions of the guests
 * authorised for the PF's VFs, so their next start presents it. The libvirt implementation (virsh,
 * `<qemu:override>`) lives with the libvirt code; the rotator only needs this interface. A guest
 * whose definition cannot be synced is reported and logged — the new token is already applied and
 * active, and rolling it back would not fix that guest — and `vfbroker guest sync` repairs it later.
 */
import type { PciAddress } from '../../pci/address.js';

export interface SyncFailure {
  /** The guest's name or UUID, as the implementation knows it. */
  readonly guest: string;
  /** One line, never a token. */
  readonly message: string;
}

export interface SyncReport {
  readonly synced: readonly string[];
  readonly failed: readonly SyncFailure[];
}

export interface DefinitionSync {
  /** Writes the PF's `generation` token into every authorised guest's definition. Idempotent. */
  syncGuests(pf: PciAddress, generation: number): Promise<SyncReport>;
}
