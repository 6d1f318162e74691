/** The order `ls /sys/bus/pci/devices` would show if it sorted numerically: domain, bus, slot, function. */
import { parsePciAddressParts, type PciAddress } from '../pci/address.js';

export function sortPciAddresses(addresses: Iterable<PciAddress>): PciAddress[] {
  return [...addresses]
    .map((addr) => ({ addr, key: sortKey(addr) }))
    .sort((a, b) => a.key - b.key)
    .map(({ addr }) => addr);
}

function sortKey(addr: PciAddress): number {
  const p = parsePciAddressParts(addr);
  // 32 + 8 + 5 + 3 bits: exact in a double (53 bits).
  return ((p.domain * 256 + p.bus) * 32 + p.slot) * 8 + p.function;
}
