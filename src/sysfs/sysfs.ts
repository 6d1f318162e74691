/**
 * Everything vfbroker does to PCI sysfs goes through this interface. Two implementations answer it:
 * RealSysfs (a directory tree, `/sys` in production) and SysfsSimulator (an in-memory model that
 * answers like the kernel). The case table in test/cases/sysfs-cases.ts runs against both, and
 * against a real kernel in test/kernel, so the simulator is trusted only as far as the kernel agrees.
 *
 * Every method takes validated PciAddress values, never raw strings, so nothing here can be steered
 * outside /sys/bus/pci by a hostile address. Refusals come back as KernelError with the errno the
 * kernel returned (EBUSY, ERANGE, ENOENT, EINVAL, EACCES, ENODEV, EPERM).
 *
 * One question is answered outside sysfs, in /dev: whether a VFIO group is open (heldVfioGroup).
 * The PF life cycle must ask it, and the simulator, which models VFIO, must answer it like the kernel.
 */
import type { PciAddress } from '../pci/address.js';

/** Attributes of /sys/bus/pci/devices/<addr>/ that vfbroker reads. */
export type DeviceAttribute =
  | 'vendor'
  | 'device'
  | 'class'
  | 'numa_node'
  | 'driver_override'
  | 'reset_method'
  | 'sriov_totalvfs'
  | 'sriov_numvfs'
  | 'sriov_offset'
  | 'sriov_stride'
  | 'sriov_vf_device'
  | 'sriov_drivers_autoprobe';

/** The subset of those that vfbroker writes. */
export type WritableDeviceAttribute =
  'driver_override' | 'reset_method' | 'sriov_numvfs' | 'sriov_drivers_autoprobe';

export interface Sysfs {
  /** A description for logs and errors: the root directory, or "simulator:<fixture>". */
  readonly description: string;

  /** Addresses under /sys/bus/pci/devices, sorted. */
  listDevices(): Promise<PciAddress[]>;
  /** Whether /sys/bus/pci/devices/<addr> exists. */
  exists(addr: PciAddress): Promise<boolean>;
  /** `cat /sys/bus/pci/devices/<addr>/<name>`, trailing newline removed. ENOENT if absent. */
  readAttribute(addr: PciAddress, name: DeviceAttribute): Promise<string>;
  /** `echo <value> > /sys/bus/pci/devices/<addr>/<name>`. */
  writeAttribute(addr: PciAddress, name: WritableDeviceAttribute, value: string): Promise<void>;
  /** basename of `readlink /sys/bus/pci/devices/<addr>/driver`, null when unbound. */
  driver(addr: PciAddress): Promise<string | null>;
  /** basename of `readlink …/iommu_group`, null when the device has none. */
  iommuGroup(addr: PciAddress): Promise<number | null>;
  /** The PF of a VF (`…/physfn`), null for anything that is not a VF. */
  physfn(addr: PciAddress): Promise<PciAddress | null>;
  /** The VFs of a PF, in `virtfnN` order (index N = VF N). Empty when SR-IOV is off or not a PF. */
  virtfns(addr: PciAddress): Promise<PciAddress[]>;

  /** Drivers registered under /sys/bus/pci/drivers, sorted. */
  listDrivers(): Promise<string[]>;
  /** `echo <addr> > /sys/bus/pci/drivers/<driver>/bind`. EBUSY if already bound, ENODEV if it will not take it. */
  bind(addr: PciAddress, driver: string): Promise<void>;
  /** `echo <addr> > /sys/bus/pci/devices/<addr>/driver/unbind`; a no-op when unbound. */
  unbind(addr: PciAddress): Promise<void>;
  /** `echo <addr> > /sys/bus/pci/drivers_probe`: succeeds even when no driver attaches. */
  probe(addr: PciAddress): Promise<void>;

  /** `cat /sys/module/<module>/parameters/<param>`, null when the module or parameter is absent. */
  moduleParameter(module: string, param: string): Promise<string | null>;

  /**
   * The VFIO group device of IOMMU group `group` (`/dev/vfio/<group>`, `/dev/vfio/noiommu-<group>`)
   * when a process holds it open; null when none does, or when there is none (nothing in the group
   * is on a VFIO driver). The kernel lets one file at a time open a group and answers EBUSY to any
   * other open (vfio_group_fops_open); an open device fd keeps its group's file open, and from
   * Linux 6.6 a device opened through /dev/vfio/devices/vfioN blocks the group too. Shell:
   * `true < /dev/vfio/<group>` ("Device or resource busy": held). The probe's open is closed at once.
   */
  heldVfioGroup(group: number): Promise<string | null>;
}
