/**
 * An IOMMU group attached to a container of its own, ready to hand out device fds: the sequence every
 * user of the legacy VFIO path runs (QEMU's vfio_get_group + vfio_connect_container, DPDK's
 * rte_vfio_setup_device), in the order the kernel requires — the IOMMU type can only be set once a
 * group is in the container, and device fds only exist once the IOMMU type is set.
 */
import { VfbError } from '../errors.js';
import type { PciAddress } from '../pci/address.js';
import {
  VFIO_API_VERSION,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  checkExtension,
  closeFd,
  getApiVersion,
  groupGetDeviceFd,
  groupGetStatus,
  groupSetContainer,
  openPath,
  setIommu,
} from './vfio.js';

const VFIO_CONTAINER_PATH = '/dev/vfio/vfio';

export class VfioGroup {
  private constructor(
    readonly groupNumber: number,
    private readonly container: number,
    private readonly group: number,
    /** VFIO_TYPE1v2_IOMMU, or VFIO_TYPE1_IOMMU on kernels without v2. */
    readonly iommuType: number,
  ) {}

  /** Open /dev/vfio/vfio and /dev/vfio/<n>, check the group is viable, attach it, set the IOMMU type. */
  static open(groupNumber: number): VfioGroup {
    const groupPath = `/dev/vfio/${groupNumber}`;
    const opened: number[] = [];
    try {
      const container = openPath(VFIO_CONTAINER_PATH);
      opened.push(container);
      const api = getApiVersion(container);
      if (api !== VFIO_API_VERSION) {
        throw new VfbError(
          'KERNEL_REFUSED',
          `unknown VFIO API version ${api} (expected ${VFIO_API_VERSION})`,
          {
            details: { errno: 'EINVAL', op: 'VFIO_GET_API_VERSION', path: VFIO_CONTAINER_PATH },
          },
        );
      }
      const iommuType = checkExtension(container, VFIO_TYPE1v2_IOMMU)
        ? VFIO_TYPE1v2_IOMMU
        : checkExtension(container, VFIO_TYPE1_IOMMU)
          ? VFIO_TYPE1_IOMMU
          : null;
      if (iommuType === null) {
        throw new VfbError('KERNEL_REFUSED', 'VFIO offers no type1 IOMMU backend', {
          hint: 'load vfio_iommu_type1 and boot with the IOMMU on (intel_iommu=on or amd_iommu=on)',
          details: { errno: 'ENODEV', op: 'VFIO_CHECK_EXTENSION', path: VFIO_CONTAINER_PATH },
        });
      }
      const group = openPath(groupPath);
      opened.push(group);
      if (!groupGetStatus(group, groupPath).viable) {
        throw new VfbError('KERNEL_REFUSED', `IOMMU group ${groupNumber} is not viable`, {
          hint: 'bind every device of the IOMMU group to vfio-pci (or unbind it) first',
          details: { errno: 'EINVAL', op: 'VFIO_GROUP_GET_STATUS', path: groupPath },
        });
      }
      groupSetContainer(group, groupPath, container);
      setIommu(container, iommuType);
      return new VfioGroup(groupNumber, container, group, iommuType);
    } catch (err) {
      for (const fd of opened.reverse()) closeFd(fd);
      throw err;
    }
  }

  /** A device fd for `device` (see groupGetDeviceFd); the caller closes it with closeFd. */
  openDevice(device: PciAddress, token?: string): number {
    return groupGetDeviceFd(this.group, device, token);
  }

  /** Close the group, then the container; close the device fds opened from it first. */
  close(): void {
    closeFd(this.group);
    closeFd(this.container);
  }
}
