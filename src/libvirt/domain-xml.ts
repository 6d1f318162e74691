/**
 * What vfbroker needs from a libvirt domain definition: the guest's identity, the PCI devices it
 * passes through and the vf-token each of them presents. The input is untrusted (the hook's stdin,
 * `virsh dumpxml`), so it goes through the hardened parser in xml-tree.ts and every address through
 * parseLibvirtPciAddress.
 *
 * Device shapes (REFERENCE.md §4; libvirt src/conf/domain_conf.c, virDomainNetDefFormat):
 * - `<hostdev mode='subsystem' type='pci'><source><address domain= bus= slot= function=/>`;
 * - `<interface type='hostdev'><source><address type='pci' …/>`;
 * - `<interface type='network'><source network='pool'/>` against a hostdev network. Before the VF
 *   is chosen (the hook's `prepare`) there is no address. Once it is, libvirt prints the live XML
 *   in one of two forms: the public one replaces the interface by `<interface type='hostdev'>` with
 *   the VF's address (indistinguishable from a configured one), the status one keeps
 *   `<interface type='network'>` and adds `<actual type='hostdev'><source><address type='pci' …/>`.
 *
 * The vf-token reaches QEMU through `<qemu:override><qemu:device alias='ua-…'><qemu:frontend>
 * <qemu:property name='vf-token' type='string' value='UUID'/>` (libvirt ≥ 8.2), keyed by the
 * device's `<alias name='ua-…'/>`; the qemu namespace may be bound to any prefix.
 */
import { isUuid } from '../uuid.js';
import { VfbError } from '../errors.js';
import { parseLibvirtPciAddress, type PciAddress } from '../pci/address.js';
import {
  attr,
  childrenNamed,
  firstChild,
  parseXml,
  type XmlDocument,
  type XmlElement,
  type XmlLimits,
} from './xml-tree.js';

export const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';
export const VF_TOKEN_PROPERTY = 'vf-token';

export type PciDeviceKind = 'hostdev' | 'interface-hostdev' | 'interface-network';

export interface DomainPciDevice {
  readonly kind: PciDeviceKind;
  /** The host PCI address; null for a hostdev-network interface whose VF is not chosen yet. */
  readonly address: PciAddress | null;
  /** The device's `<alias name=…/>`, null when it has none. */
  readonly alias: string | null;
  /** The network an `interface-network` device draws its VF from. */
  readonly network?: string;
}

export interface DomainInfo {
  readonly uuid: string;
  readonly name: string;
  readonly pciDevices: readonly DomainPciDevice[];
  /** vf-token values from `<qemu:override>`, by device alias. */
  readonly vfTokens: ReadonlyMap<string, string>;
}

/** A PCI device together with the element that defines it, for in-place edits. */
export interface LocatedPciDevice extends DomainPciDevice {
  readonly element: XmlElement;
}

/** A vf-token property together with where it sits. */
export interface LocatedVfToken {
  readonly alias: string;
  readonly value: string;
  readonly device: XmlElement;
  readonly property: XmlElement;
}

/** UTF-8 bytes to text; invalid UTF-8 is refused rather than replaced. */
export function decodeXmlBytes(bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new VfbError('INVALID_ARGUMENT', `${what} is not valid UTF-8`, {
      hint: 'libvirt sends UTF-8; check what produced this input',
    });
  }
}

export function parseDomainXml(source: string, what = 'domain XML', limits?: XmlLimits): XmlDocument {
  const doc = parseXml(source, what, limits);
  if (doc.root.local !== 'domain' || doc.root.uri !== '') {
    throw invalid(what, `has root element <${doc.root.name}> instead of <domain>`);
  }
  return doc;
}

export function readDomainXml(source: string, what = 'domain XML', limits?: XmlLimits): DomainInfo {
  const doc = parseDomainXml(source, what, limits);
  return {
    ...domainIdentity(doc, what),
    pciDevices: locatePciDevices(doc, what).map(withoutElement),
    vfTokens: new Map(locateVfTokens(doc, what).map((t) => [t.alias, t.value])),
  };
}

function withoutElement(d: LocatedPciDevice): DomainPciDevice {
  return {
    kind: d.kind,
    address: d.address,
    alias: d.alias,
    ...(d.network === undefined ? {} : { network: d.network }),
  };
}

export function domainIdentity(doc: XmlDocument, what: string): { uuid: string; name: string } {
  const uuid = firstChild(doc.root, 'uuid')?.text.trim() ?? '';
  const name = firstChild(doc.root, 'name')?.text.trim() ?? '';
  if (!isUuid(uuid))
    throw invalid(what, uuid === '' ? 'has no <uuid>' : `has a malformed <uuid> ${show(uuid)}`);
  if (name === '') throw invalid(what, 'has no <name>');
  return { uuid: uuid.toLowerCase(), name };
}

/** Every PCI device in `<devices>`, in document order. */
export function locatePciDevices(doc: XmlDocument, what: string): LocatedPciDevice[] {
  const devices = firstChild(doc.root, 'devices');
  if (!devices) return [];
  const out: LocatedPciDevice[] = [];
  for (const el of devices.children) {
    if (el.uri !== '') continue;
    const device = readDevice(el, `${what}: <${el.name}> #${out.length + 1}`);
    if (device) out.push({ ...device, element: el });
  }
  return out;
}

function readDevice(el: XmlElement, where: string): DomainPciDevice | null {
  const alias = aliasOf(el);
  if (el.local === 'hostdev') {
    if (attr(el, 'mode') !== 'subsystem' || attr(el, 'type') !== 'pci') return null;
    return { kind: 'hostdev', address: sourceAddress(el, where, false), alias };
  }
  if (el.local !== 'interface') return null;
  const type = attr(el, 'type');
  if (type === 'hostdev') {
    return { kind: 'interface-hostdev', address: sourceAddress(el, where, true), alias };
  }
  if (type !== 'network') return null;
  const source = firstChild(el, 'source');
  const network = source && attr(source, 'network');
  const actual = firstChild(el, 'actual');
  // The status form of a started guest: only a hostdev actual is a PCI device (bridge, direct… are not).
  if (actual && attr(actual, 'type') !== 'hostdev') return null;
  const address = actual ? sourceAddress(actual, where, true) : null;
  return { kind: 'interface-network', address, alias, ...(network === undefined ? {} : { network }) };
}

function sourceAddress(el: XmlElement, where: string, typed: boolean): PciAddress {
  const source = firstChild(el, 'source');
  const address = source && firstChild(source, 'address');
  if (!address) throw invalid(where, 'has no <source><address/>');
  const type = attr(address, 'type');
  // A hostdev's source address carries no type; an interface's says type='pci'.
  if (typed ? type !== 'pci' : type !== undefined && type !== 'pci') {
    throw invalid(where, `has a source address of type ${show(type ?? '(none)')}, expected 'pci'`);
  }
  try {
    return parseLibvirtPciAddress({
      domain: attr(address, 'domain'),
      bus: attr(address, 'bus'),
      slot: attr(address, 'slot'),
      function: attr(address, 'function'),
    });
  } catch (err) {
    throw new VfbError(
      'INVALID_ARGUMENT',
      `${where}: ${err instanceof Error ? err.message : 'invalid address'}`,
      {
        cause: err,
      },
    );
  }
}

export function aliasOf(el: XmlElement): string | null {
  const alias = firstChild(el, 'alias');
  return alias ? (attr(alias, 'name') ?? null) : null;
}

/** The `<qemu:override>` elements directly under `<domain>`. */
export function qemuOverrides(doc: XmlDocument): XmlElement[] {
  return childrenNamed(doc.root, 'override', QEMU_NS);
}

/** Every vf-token property in the overrides; two different values for one alias are refused. */
export function locateVfTokens(doc: XmlDocument, what: string): LocatedVfToken[] {
  const out: LocatedVfToken[] = [];
  for (const override of qemuOverrides(doc)) {
    for (const device of childrenNamed(override, 'device', QEMU_NS)) {
      const alias = attr(device, 'alias');
      if (alias === undefined) continue;
      for (const property of vfTokenProperties(device)) {
        const value = attr(property, 'value');
        // libvirt hands QEMU anything but type='string' as another type, which QEMU refuses for vf-token.
        if (value === undefined || attr(property, 'type') !== 'string') continue;
        if (out.some((t) => t.alias === alias && t.value !== value)) {
          throw invalid(what, `has two different vf-token values for alias ${show(alias)}`);
        }
        out.push({ alias, value, device, property });
      }
    }
  }
  return out;
}

/** The `<qemu:frontend><qemu:property name='vf-token' …/>` elements of one qemu:device, whatever their type. */
export function vfTokenProperties(device: XmlElement): XmlElement[] {
  return childrenNamed(device, 'frontend', QEMU_NS).flatMap((frontend) =>
    childrenNamed(frontend, 'property', QEMU_NS).filter((p) => attr(p, 'name') === VF_TOKEN_PROPERTY),
  );
}

function invalid(what: string, why: string): VfbError {
  return new VfbError('INVALID_ARGUMENT', `${what} ${why}`);
}

/** Untrusted text, quoted and cut short for a message. */
function show(s: string): string {
  return JSON.stringify(s.slice(0, 40));
}
