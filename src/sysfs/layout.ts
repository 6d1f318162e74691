/**
 * Where things live under a sysfs root, and how an operation on them is described in an error.
 * RealSysfs and the simulator share both, so a refusal reads the same whichever answered it:
 * `cannot set sriov_numvfs of 0000:3b:00.0 to 4 (EBUSY on /sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs)`.
 *
 * Every function takes names that were validated before (PciAddress, checkSysfsName), so joining them
 * cannot leave the root.
 */
import { posix } from 'node:path';
import type { PciAddress } from '../pci/address.js';

export class SysfsLayout {
  constructor(readonly root: string) {}

  /** /sys/bus/pci/devices */
  get devices(): string {
    return posix.join(this.root, 'bus/pci/devices');
  }

  /** /sys/bus/pci/drivers */
  get drivers(): string {
    return posix.join(this.root, 'bus/pci/drivers');
  }

  /** /sys/bus/pci/drivers_probe */
  get driversProbe(): string {
    return posix.join(this.root, 'bus/pci/drivers_probe');
  }

  /** /sys/bus/pci/devices/<addr>[/<entry>] */
  device(addr: PciAddress, entry?: string): string {
    return entry === undefined ? posix.join(this.devices, addr) : posix.join(this.devices, addr, entry);
  }

  /** /sys/bus/pci/drivers/<driver>/<entry> */
  driver(driver: string, entry: 'bind' | 'unbind'): string {
    return posix.join(this.drivers, driver, entry);
  }

  /** /sys/module/<module>/parameters/<param> */
  moduleParameter(module: string, param: string): string {
    return posix.join(this.root, 'module', module, 'parameters', param);
  }
}

/** The words for each operation, used as the message of the error that refuses it. */
export const describe = {
  listDevices: () => 'cannot list PCI devices',
  listDrivers: () => 'cannot list PCI drivers',
  exists: (addr: PciAddress) => `cannot look up PCI device ${addr}`,
  read: (addr: PciAddress, name: string) => `cannot read ${name} of ${addr}`,
  write: (addr: PciAddress, name: string, value: string) =>
    `cannot set ${name} of ${addr} to ${shown(value)}`,
  link: (addr: PciAddress, link: string) => `cannot read the ${link} link of ${addr}`,
  bind: (addr: PciAddress, driver: string) => `cannot bind ${addr} to driver ${driver}`,
  unbind: (addr: PciAddress, driver: string) => `cannot unbind ${addr} from driver ${driver}`,
  probe: (addr: PciAddress) => `cannot probe drivers for ${addr}`,
  moduleParameter: (module: string, param: string) => `cannot read parameter ${param} of module ${module}`,
} as const;

/** Plain values as they are, anything else quoted and cut short (values come from callers). */
function shown(value: string): string {
  return /^[A-Za-z0-9_.:-]{1,64}$/.test(value) ? value : JSON.stringify(value.slice(0, 64));
}
