/**
 * Setting sriov_numvfs. The kernel refuses to change a non-zero count to another non-zero count
 * (EBUSY), so a change goes through 0; the VFs are then read back from the virtfnN links, because
 * their addresses depend on offset and stride values that may change with the count. Writing 0
 * with a VF open through VFIO would wait for its user, so that is refused first (open-vfs.ts).
 */
import { VfbError } from '../../errors.js';
import type { PciAddress } from '../../pci/address.js';
import type { Sysfs } from '../../sysfs/sysfs.js';
import { refuseOpenVfs } from './open-vfs.js';

/** Sets the VF count (a no-op when it already is `count`) and returns the VFs, VF 0 first. */
export async function setNumVfs(sysfs: Sysfs, pf: PciAddress, count: number): Promise<PciAddress[]> {
  const current = Number.parseInt(await sysfs.readAttribute(pf, 'sriov_numvfs'), 10);
  if (current !== count) {
    if (current !== 0) {
      const vfs = (await sysfs.virtfns(pf)).map((address, index) => ({ index, address }));
      await refuseOpenVfs(sysfs, pf, vfs, `remove its ${current} VFs`);
      if (count !== 0) await sysfs.writeAttribute(pf, 'sriov_numvfs', '0');
    }
    await sysfs.writeAttribute(pf, 'sriov_numvfs', String(count));
  }
  const vfs = await sysfs.virtfns(pf);
  if (vfs.length !== count) {
    throw new VfbError(
      'KERNEL_REFUSED',
      `PF ${pf}: sriov_numvfs is ${count} but ${vfs.length} VFs appeared (virtfn links)`,
      {
        hint: 'the kernel log (dmesg) says why VFs are missing; `vfbroker pf down` then `up` retries',
        details: { expected: count, found: vfs.length },
      },
    );
  }
  return vfs;
}
