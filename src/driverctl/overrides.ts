/**
 * driverctl's persistent overrides, read from the files it keeps; vfbroker never runs driverctl.
 * What driverctl does (its script and units, 0.111 to 0.121, gitlab.com/driverctl/driverctl):
 *
 * - `driverctl set-override <bdf> <driver>` unbinds the device, writes the driver to its
 *   driver_override, reprobes it, then saves `<driver>\n` to `/etc/driverctl.d/pci-<bdf>` (no
 *   extension). `unset-override` clears driver_override and removes the file. Both refuse a device
 *   that does not exist ("no such device"), so the file of a VF that is gone can only be removed.
 * - `--nosave` changes sysfs and writes no file: such an override is gone at the next boot, looks
 *   exactly like the driver_override vfbroker sets itself, and is nothing to compare with.
 * - driverctl's udev rule runs `driverctl load-override <bdf>` on every "add" event of a device
 *   that has a file: a PF at boot, a VF each time it is created. load-override ignores an empty
 *   file, and reads the driver as bash's `$(< file)` does (trailing newlines dropped): "none"
 *   leaves the device unbound, and a file of only newlines clears the override so that the device
 *   goes back to its default driver.
 * - `driverctl list-overrides` does not read these files: it lists the devices whose
 *   driver_override is set in sysfs (vfio-pci's VFs and `--nosave` ones too) with the driver bound
 *   now. Hence the files, not that command, are what survives a reboot.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readBoundedText } from '../config/bounded-file.js';
import { quote } from '../config/wording.js';
import type { PciAddress } from '../pci/address.js';

/** driver_override refuses anything that would not fit a sysfs page back, so a file is never longer. */
const MAX_FILE_BYTES = 4096;

export interface DriverctlOverride {
  readonly address: PciAddress;
  /** What load-override writes to driver_override: a driver, "none", or "" (the default driver). */
  readonly driver: string;
  /** The file it came from. */
  readonly file: string;
}

export type DriverctlOverrides = ReadonlyMap<PciAddress, DriverctlOverride>;

/** `/etc/driverctl.d/pci-<address>`: the address is validated, so it cannot leave the directory. */
export function overrideFile(directory: string, address: PciAddress): string {
  return join(directory, `pci-${address}`);
}

/** The overrides driverctl keeps in `directory` for these devices (those without one are absent). */
export async function readDriverctlOverrides(
  directory: string,
  addresses: readonly PciAddress[],
): Promise<DriverctlOverrides> {
  const found = new Map<PciAddress, DriverctlOverride>();
  for (const address of addresses) {
    const file = overrideFile(directory, address);
    const text = await readIfPresent(file);
    // An empty file is one load-override skips.
    if (text !== null && text !== '') found.set(address, { address, driver: text.replace(/\n+$/, ''), file });
  }
  return found;
}

/** The driver an override binds, in words for messages (the file's text is shown escaped). */
export function overrideTarget(driver: string): string {
  if (driver === '') return 'its default driver (the file holds no driver name)';
  if (driver === 'none') return 'no driver ("none")';
  return /^[A-Za-z0-9_.-]{1,64}$/.test(driver) ? driver : quote(driver);
}

async function readIfPresent(file: string): Promise<string | null> {
  try {
    await stat(file);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
  }
  // Anything else (not a regular file, too long, unreadable) is reported with the file's name.
  return readBoundedText(file, MAX_FILE_BYTES);
}
