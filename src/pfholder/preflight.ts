/**
 * What the holder checks before it says it is ready: the PF exists, is an SR-IOV PF, is bound to
 * vfio-pci and sits in an IOMMU group. Each refusal names the fix and carries the errno the holder
 * reports in its `{"ready":false}` line.
 */
import { KernelError, VfbError } from '../errors.js';
import type { PciAddress } from '../pci/address.js';
import type { Sysfs } from '../sysfs/sysfs.js';

export interface ReadyPf {
  readonly pf: PciAddress;
  readonly iommuGroup: number;
}

export async function checkPf(sysfs: Sysfs, pf: PciAddress): Promise<ReadyPf> {
  if (!(await sysfs.exists(pf))) {
    throw refuse('NOT_FOUND', 'ENODEV', `PCI device ${pf} does not exist`, 'check the address with lspci -D');
  }
  if (!(await isSriovPf(sysfs, pf))) {
    throw refuse(
      'INVALID_ARGUMENT',
      'EINVAL',
      `${pf} is not an SR-IOV PF (it has no sriov_totalvfs)`,
      'only an SR-IOV physical function has a VF token; give the PF, not one of its VFs',
    );
  }
  const driver = await sysfs.driver(pf);
  if (driver !== 'vfio-pci') {
    throw refuse(
      'INVALID_ARGUMENT',
      'EINVAL',
      driver === null
        ? `${pf} is not bound to vfio-pci (it has no driver)`
        : `${pf} is bound to ${driver}, not vfio-pci`,
      'bind the PF to vfio-pci (loaded with enable_sriov=1) before starting its holder',
    );
  }
  const iommuGroup = await sysfs.iommuGroup(pf);
  if (iommuGroup === null) {
    throw refuse(
      'NOT_FOUND',
      'ENODEV',
      `${pf} has no IOMMU group`,
      'turn the IOMMU on (intel_iommu=on or amd_iommu=on on the kernel command line)',
    );
  }
  return { pf, iommuGroup };
}

async function isSriovPf(sysfs: Sysfs, pf: PciAddress): Promise<boolean> {
  try {
    await sysfs.readAttribute(pf, 'sriov_totalvfs');
    return true;
  } catch (err) {
    if (err instanceof KernelError && err.errno === 'ENOENT') return false;
    throw err;
  }
}

function refuse(
  code: 'NOT_FOUND' | 'INVALID_ARGUMENT',
  errno: string,
  message: string,
  hint: string,
): VfbError {
  return new VfbError(code, message, { hint, details: { errno } });
}
