/**
 * What the doctor needs from a guest's persistent definition: its PCI devices, whether each
 * presents a vf-token (never the value: the doctor has no use for it, so it never holds one), which
 * VFIO backend QEMU will use for it, and the emulator libvirt will run.
 */
import { isAbsolute } from 'node:path';
import {
  domainIdentity,
  locatePciDevices,
  locateVfTokens,
  parseDomainXml,
  type PciDeviceKind,
} from '../libvirt/domain-xml.js';
import { attr, firstChild, type XmlElement } from '../libvirt/xml-tree.js';
import type { PciAddress } from '../pci/address.js';
import { DEFAULT_EMULATOR } from './environment.js';

export interface GuestDevice {
  readonly kind: PciDeviceKind;
  /** null for a VF a hostdev network picks only when the guest starts. */
  readonly address: PciAddress | null;
  readonly alias: string | null;
  readonly network: string | null;
  /** Whether `<qemu:override>` sets a vf-token for the device's alias. */
  readonly hasToken: boolean;
  /** `<driver iommufd='yes'/>`: QEMU opens the device through iommufd, whose backend ignores vf-token. */
  readonly iommufd: boolean;
}

export interface GuestView {
  readonly name: string;
  readonly uuid: string;
  /** The `<emulator>` libvirt runs for it. */
  readonly emulator: string;
  readonly devices: readonly GuestDevice[];
}

/** Throws INVALID_ARGUMENT (naming the guest, never a token) when the definition is malformed. */
export function readGuest(xml: string, name: string): GuestView {
  const what = `the definition of guest ${JSON.stringify(name.slice(0, 64))}`;
  const doc = parseDomainXml(xml, what);
  const identity = domainIdentity(doc, what);
  const aliasesWithToken = new Set(locateVfTokens(doc, what).map((t) => t.alias));
  const devices = locatePciDevices(doc, what).map((d): GuestDevice => ({
    kind: d.kind,
    address: d.address,
    alias: d.alias,
    network: d.network ?? null,
    hasToken: d.alias !== null && aliasesWithToken.has(d.alias),
    iommufd: usesIommufd(d.element),
  }));
  return { name, uuid: identity.uuid, emulator: emulatorOf(doc.root), devices };
}

function usesIommufd(device: XmlElement): boolean {
  const driver = firstChild(device, 'driver');
  return driver !== undefined && attr(driver, 'iommufd') === 'yes';
}

function emulatorOf(domain: XmlElement): string {
  const devices = firstChild(domain, 'devices');
  const emulator = devices && firstChild(devices, 'emulator')?.text.trim();
  // libvirt insists on an absolute path; anything else is not run, the default QEMU is checked instead.
  return emulator !== undefined && isAbsolute(emulator) ? emulator : DEFAULT_EMULATOR;
}
