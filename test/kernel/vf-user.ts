/**
 * What the stages do as a VF user (QEMU's `vf-token=`, DPDK's `--vfio-vf-token`), reduced to the
 * words the report compares: an open's outcome and a read through an open device fd.
 */
import { isVfbError } from '../../src/errors.js';
import type { PciAddress } from '../../src/pci/address.js';
import { VFIO_PCI_CONFIG_REGION_INDEX, deviceGetRegionInfo, preadFd } from '../../src/pfholder/vfio.js';

/** 'OK' or the errno name VFIO answered with. */
export function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'OK';
  } catch (err) {
    if (isVfbError(err) && typeof err.details['errno'] === 'string') return err.details['errno'];
    throw err;
  }
}

/** vendor:device as read through the device fd's config region: proof the fd still works. */
export function configIds(fd: number, addr: PciAddress): string {
  const region = deviceGetRegionInfo(fd, addr, VFIO_PCI_CONFIG_REGION_INDEX);
  const ids = preadFd(fd, `config space of ${addr}`, 4, region.offset);
  if (ids.length !== 4) return `short read (${ids.length} bytes)`;
  const hex = (n: number) => n.toString(16).padStart(4, '0');
  return `${hex(ids.readUInt16LE(0))}:${hex(ids.readUInt16LE(2))}`;
}
