/**
 * VFs a process holds open through VFIO. The kernel does not refuse to remove one: vfio-pci's
 * remove waits until its user closes it, with no limit ("No device request channel registered,
 * blocked until released by user" in dmesg, unless the user registered a request eventfd as QEMU
 * does), and every read of the PF's sriov_numvfs waits with it (seen on Linux 6.1 and 6.12,
 * test/kernel stage 3). A DPDK application or a QEMU that got its token from GetToken holds no
 * lease, so the broker cannot know of it. Hence the life cycle asks the kernel before anything
 * that removes VFs or takes one off vfio-pci, and refuses with BUSY, naming each open VF.
 */
import { VfbError } from '../../errors.js';
import type { PciAddress } from '../../pci/address.js';
import type { Sysfs } from '../../sysfs/sysfs.js';

export interface VfRef {
  readonly index: number;
  readonly address: PciAddress;
}

/** Throws BUSY when a process holds one of `vfs` open; `action` says what would wait ("remove its 2 VFs"). */
export async function refuseOpenVfs(
  sysfs: Sysfs,
  pf: PciAddress,
  vfs: readonly VfRef[],
  action: string,
): Promise<void> {
  if (vfs.length === 0) return;
  const pfGroup = await sysfs.iommuGroup(pf);
  const open: { vf: VfRef; node: string }[] = [];
  for (const vf of vfs) {
    const group = await sysfs.iommuGroup(vf.address);
    // A VF in its PF's group (no ACS between them) cannot be told apart from the PF driver, which
    // holds that group itself; and no other process can open it while the PF driver runs.
    if (group === null || group === pfGroup) continue;
    const node = await sysfs.heldVfioGroup(group);
    if (node !== null) open.push({ vf, node });
  }
  const [only, ...more] = open;
  if (only === undefined) return;
  const which =
    more.length === 0
      ? `VF ${only.vf.index} ${only.vf.address} is open (VFIO group ${only.node} is held by a process, a DPDK application or QEMU); close it first: the kernel would wait for it`
      : `${open.map(({ vf, node }) => `VF ${vf.index} ${vf.address} (VFIO group ${node})`).join(', ')} are open (held by processes, DPDK applications or QEMU); close them first: the kernel would wait for them`;
  throw new VfbError('BUSY', `PF ${pf} cannot ${action}: ${which}`, {
    hint: `fuser -v ${open.map((o) => o.node).join(' ')}`,
    details: { vfs: open.map((o) => o.vf.address).join(' ') },
  });
}
