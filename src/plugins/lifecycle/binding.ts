/**
 * Moving a device between drivers the way the kernel documents it: name the driver in
 * driver_override, unbind, ask drivers_probe to find it a driver, then read the driver link back
 * (drivers_probe reports success even when nothing attached).
 */
import { VfbError } from '../../errors.js';
import type { PciAddress } from '../../pci/address.js';
import type { Sysfs } from '../../sysfs/sysfs.js';

/** Binds `address` to `driver`; does nothing when it already is. */
export async function bindDevice(sysfs: Sysfs, address: PciAddress, driver: string): Promise<void> {
  const current = await sysfs.driver(address);
  if (current === driver) return;
  // The override stays set: it keeps the device on this driver when something reprobes it.
  await sysfs.writeAttribute(address, 'driver_override', driver);
  if (current !== null) await sysfs.unbind(address);
  await sysfs.probe(address);
  const now = await sysfs.driver(address);
  if (now === driver) return;
  const loaded = (await sysfs.listDrivers()).includes(driver);
  throw new VfbError(
    'KERNEL_REFUSED',
    loaded
      ? `${address} did not bind to ${driver} (now ${now ?? 'unbound'}); the kernel log (dmesg) says why`
      : `${address} cannot bind to ${driver}: the driver is not loaded (run \`modprobe ${driver}\`)`,
    { details: { address, driver } },
  );
}

/**
 * Gives a device back to the host: clears an override naming `driver`, unbinds it from `driver`
 * and lets the kernel pick its usual driver. Leaves a device on any other driver alone.
 */
export async function releaseDevice(sysfs: Sysfs, address: PciAddress, driver: string): Promise<void> {
  const override = await sysfs.readAttribute(address, 'driver_override');
  const current = await sysfs.driver(address);
  if (override !== driver && current !== driver) return;
  if (override === driver) await sysfs.writeAttribute(address, 'driver_override', '\n');
  if (current === driver) {
    await sysfs.unbind(address);
    await sysfs.probe(address);
  }
}
