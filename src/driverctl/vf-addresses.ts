/**
 * The addresses of a PF's VFs, before they exist: driverctl's files name VFs by address, and a
 * plan has to be checked against them before it creates the VFs.
 *
 * VFs that exist are read from the virtfnN links. Missing ones are computed as the kernel computes
 * them (drivers/pci/iov.c pci_iov_virtfn_bus/devfn): routing ID = the PF's (bus << 8 | devfn) +
 * sriov_offset + sriov_stride × n, in the PF's domain. A device may change offset and stride with
 * NumVFs, so this is a prediction and is used only where there is nothing to read yet. The
 * simulator computes the same thing on its own side, on purpose: a shared helper would make a
 * mistake in it invisible to the tests.
 */
import { VfbError } from '../errors.js';
import { formatPciAddress, parsePciAddressParts, type PciAddress } from '../pci/address.js';
import type { Sysfs } from '../sysfs/sysfs.js';

/** VF 0 … count-1 of `pf`; null where the routing ID would not fit (the kernel cannot create it). */
export async function vfAddresses(
  sysfs: Sysfs,
  pf: PciAddress,
  count: number,
): Promise<(PciAddress | null)[]> {
  const existing = await sysfs.virtfns(pf);
  if (existing.length >= count) return existing.slice(0, count);
  const offset = await readNumber(sysfs, pf, 'sriov_offset');
  const stride = await readNumber(sysfs, pf, 'sriov_stride');
  const p = parsePciAddressParts(pf);
  const base = ((p.bus << 8) | (p.slot << 3) | p.function) + offset;
  return Array.from({ length: count }, (_, n) => {
    const rid = base + stride * n;
    if (rid > 0xffff) return null;
    return formatPciAddress({ domain: p.domain, bus: rid >> 8, slot: (rid >> 3) & 0x1f, function: rid & 7 });
  });
}

async function readNumber(
  sysfs: Sysfs,
  pf: PciAddress,
  name: 'sriov_offset' | 'sriov_stride',
): Promise<number> {
  const text = await sysfs.readAttribute(pf, name);
  const n = Number(text);
  if (text === '' || !Number.isSafeInteger(n) || n < 0)
    throw new VfbError(
      'INTERNAL',
      `PF ${pf}: ${name} reads ${JSON.stringify(text.slice(0, 16))}, not a number`,
    );
  return n;
}
