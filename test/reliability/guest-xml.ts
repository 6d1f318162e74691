/**
 * Domain XML for the reliability tests' guests: the smallest definition libvirt would hand a hook,
 * with each VF attached the way `vfbroker guest attach` writes it (a managed hostdev with a user
 * alias and its `<qemu:override>` vf-token, src/libvirt/domain-edit.ts).
 */
import { attachVf } from '../../src/libvirt/domain-edit.js';
import type { PciAddress } from '../../src/pci/address.js';

export interface GuestDevice {
  readonly vf: PciAddress;
  /** The vf-token the definition presents. */
  readonly token: string;
}

export function domainXml(name: string, uuid: string, devices: readonly GuestDevice[]): string {
  let xml = [
    "<domain type='kvm'>",
    `  <name>${name}</name>`,
    `  <uuid>${uuid}</uuid>`,
    "  <memory unit='KiB'>1048576</memory>",
    '  <devices>',
    '  </devices>',
    '</domain>',
    '',
  ].join('\n');
  for (const d of devices) xml = attachVf(xml, d.vf, d.token).xml;
  return xml;
}
