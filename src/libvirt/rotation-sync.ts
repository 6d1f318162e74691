/**
 * The rotation's last step on a libvirt host: after a PF's new generation is active, every guest
 * whose persistent definition passes through a VF of that PF, and that the policy authorises for
 * it, gets the new token written into its definition, so its next start presents it. Running guests
 * are not touched (their QEMU has the VF open already).
 */
import { syncDefinition } from './guest-definitions.js';
import type { Virsh } from './virsh.js';
import type { DefinitionSync, SyncFailure, SyncReport } from '../broker/rotation/definition-sync.js';
import type { VfLocator } from '../broker/policy/decide.js';
import { isVfbError, toVfbError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PciAddress } from '../pci/address.js';

export interface RotationSyncDeps {
  readonly virsh: Virsh;
  readonly locate: VfLocator;
  /** The PF's active token (the generation just promoted). */
  readonly activeToken: (pf: PciAddress) => Promise<string>;
  /** Whether the policy grants the guest this VF: only authorised guests get a token. */
  readonly authorised: (guestUuid: string, vf: PciAddress) => boolean;
  readonly logger: Logger;
}

export function libvirtDefinitionSync(deps: RotationSyncDeps): DefinitionSync {
  return {
    async syncGuests(pf: PciAddress, generation: number): Promise<SyncReport> {
      const synced: string[] = [];
      const failed: SyncFailure[] = [];
      const token = await deps.activeToken(pf);
      let domains: string[];
      try {
        domains = await deps.virsh.listAll();
      } catch (err) {
        // A DPDK-only host has no libvirt: there are no definitions to keep in step.
        if (!isVfbError(err, 'NOT_FOUND')) throw err;
        deps.logger.info({ pf, generation }, 'virsh is not installed; no guest definitions to sync');
        return { synced, failed };
      }
      for (const domain of domains) {
        try {
          const result = await syncDefinition(
            deps.virsh,
            domain,
            (vf, guest) => Promise.resolve(deps.authorised(guest.uuid, vf) ? token : null),
            (vf) => deps.locate(vf)?.pf === pf,
          );
          if (result.changed) synced.push(domain);
        } catch (err) {
          failed.push({ guest: domain, message: toVfbError(err).message });
        }
      }
      deps.logger.info(
        { pf, generation, synced, failed: failed.map((f) => f.guest) },
        'guest definitions synced',
      );
      return { synced, failed };
    },
  };
}
