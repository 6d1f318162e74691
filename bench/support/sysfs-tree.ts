/**
 * Lays a host out as a directory tree shaped like /sys — the part of it the libvirt hook reads:
 * bus/pci/devices/<address>/ with its `driver` and `physfn` links. The installed hook on a real
 * host reads /sys through RealSysfs; pointed at this tree it does the same file operations, so its
 * start-up is timed without the simulator's own cost (loading zod and yaml, parsing its state).
 */
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sysfs } from '../../src/sysfs/sysfs.js';

export async function writeHookSysfsTree(host: Sysfs, root: string): Promise<void> {
  const devices = join(root, 'bus/pci/devices');
  for (const address of await host.listDevices()) {
    const dir = join(devices, address);
    await mkdir(dir, { recursive: true });
    const driver = await host.driver(address);
    if (driver !== null) {
      await mkdir(join(root, 'bus/pci/drivers', driver), { recursive: true });
      await symlink(`../../drivers/${driver}`, join(dir, 'driver'));
    }
    const pf = await host.physfn(address);
    if (pf !== null) await symlink(`../${pf}`, join(dir, 'physfn'));
  }
}
