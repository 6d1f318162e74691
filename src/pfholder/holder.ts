/**
 * The PF side of the VF token: hold an SR-IOV PF open through VFIO and set or replace its token.
 *
 * The first token opens the PF with `GET_DEVICE_FD "<pf> vf_token=<uuid>"` rather than opening it bare
 * and then setting the token, because the kernel treats the two differently when a VF is already open
 * (a holder restarted under a running guest): a bare open is refused, an open that presents the current
 * token is accepted, and one presenting another token is refused with EACCES — which is exactly the
 * answer the broker needs. With no VF open, that same open sets the token. Later tokens replace it with
 * VFIO_DEVICE_FEATURE(SET|PCI_VF_TOKEN) on the open PF (live rotation: open VFs keep working, new VF
 * opens need the new token).
 */
import type { Logger } from '../log.js';
import type { PciAddress } from '../pci/address.js';
import { VfioGroup } from './group.js';
import { uuidToBytes } from '../uuid.js';
import { closeFd, deviceSetVfToken } from './vfio.js';

export interface HolderStatus {
  /** The PF's device fd is open. */
  readonly open: boolean;
  /** A token this holder chose is in force (the kernel never reports the token itself). */
  readonly tokenSet: boolean;
}

/** What the protocol loop drives; PfHolder on a real kernel, a fake in unit tests. */
export interface TokenHolder {
  setToken(token: string): void;
  status(): HolderStatus;
  close(): void;
}

export class PfHolder implements TokenHolder {
  private opened: { readonly group: VfioGroup; readonly device: number } | null = null;

  constructor(
    private readonly pf: PciAddress,
    private readonly iommuGroup: number,
    private readonly log: Logger,
  ) {}

  setToken(token: string): void {
    // Validate before touching the kernel: a malformed token must not open the PF.
    const bytes = uuidToBytes(token);
    if (this.opened !== null) {
      deviceSetVfToken(this.opened.device, this.pf, bytes);
      this.log.info({ event: 'token-replaced' }, 'VF token replaced in place');
      return;
    }
    const group = VfioGroup.open(this.iommuGroup);
    try {
      this.opened = { group, device: group.openDevice(this.pf, token.toLowerCase()) };
    } catch (err) {
      group.close();
      throw err;
    }
    this.log.info(
      { event: 'pf-opened', iommuGroup: this.iommuGroup, iommuType: group.iommuType },
      'PF opened, VF token set',
    );
  }

  status(): HolderStatus {
    // The PF is only ever opened with a token, so an open PF always has ours in force.
    const open = this.opened !== null;
    return { open, tokenSet: open };
  }

  close(): void {
    if (this.opened === null) return;
    closeFd(this.opened.device);
    this.opened.group.close();
    this.opened = null;
    this.log.info({ event: 'pf-closed' }, 'PF closed; its VF token stays in force until the PF is unbound');
  }
}
