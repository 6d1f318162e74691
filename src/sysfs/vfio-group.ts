/**
 * Whether a process holds a VFIO group open, asked the only way the kernel answers it: open the
 * group's device node and close it again. vfio_group_fops_open (drivers/vfio/group.c) lets one file
 * at a time open a group and answers EBUSY to every other open; an open device fd holds a reference
 * on its group's file (vfio_group_use_container), so the group stays held until the device is
 * closed, whoever closed the group fd; and from Linux 6.6 a device opened through the cdev path
 * (/dev/vfio/devices/vfioN) makes the group open EBUSY too (cdev_device_open_cnt).
 *
 * The probe holds the group for the few microseconds between open() and close(): a QEMU or DPDK
 * process opening the same group in that instant would get EBUSY. It opens read-only, attaches no
 * container and sets nothing, so closing it leaves the group exactly as it was.
 */
import { constants, promises as fs } from 'node:fs';
import { posix } from 'node:path';
import { fromFsError, fsErrno } from './errno.js';

/** The node of `group` under `<devRoot>/vfio` that a process holds open, null when none is held. */
export async function heldVfioGroup(devRoot: string, group: number): Promise<string | null> {
  // vfio_create_group names a group without an IOMMU (vfio-pci's enable_unsafe_noiommu_mode, as
  // DPDK on a VM often uses) "noiommu-<n>", with the same number as its iommu_group link.
  for (const name of [String(group), `noiommu-${group}`]) {
    const path = posix.join(devRoot, 'vfio', name);
    const held = await probe(path, group);
    if (held !== 'absent') return held ? path : null;
  }
  return null;
}

async function probe(path: string, group: number): Promise<boolean | 'absent'> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, constants.O_RDONLY);
  } catch (err) {
    const errno = fsErrno(err);
    if (errno === 'EBUSY') return true;
    // No node (nothing in the group is on a VFIO driver, or vfio is not loaded), or a node whose
    // group is going away (vfio_group_fops_open: ENODEV once its last device left VFIO).
    if (errno === 'ENOENT' || errno === 'ENODEV' || errno === 'ENXIO') return 'absent';
    throw fromFsError(err, path, `cannot tell whether VFIO group ${group} is open`);
  }
  await handle.close();
  return false;
}
