/**
 * The edits `vfbroker guest attach|sync|detach` make to a guest's persistent definition (the output
 * of `virsh dumpxml --inactive`, written back with `virsh define`):
 *
 * - attach: a managed `<hostdev>` for the VF with the user alias `ua-vfbroker-<bdf>`, and its
 *   `<qemu:override>` vf-token property (declaring the qemu namespace on `<domain>` if needed);
 * - sync: the vf-token of the device that already assigns the VF set to the current token (giving
 *   the device a user alias first if it has none, since overrides are keyed by alias);
 * - detach: the device and its override removed, and the override element and namespace
 *   declaration too once nothing else uses them, so attach followed by detach gives back the input.
 *
 * Only those elements change: everything else is preserved byte-for-byte (xml-splice.ts). Tokens are
 * written into the result but never into an error message.
 */
import { VfbError } from '../errors.js';
import type { PciAddress } from '../pci/address.js';
import {
  domainIdentity,
  locatePciDevices,
  parseDomainXml,
  QEMU_NS,
  qemuOverrides,
  vfTokenProperties,
  VF_TOKEN_PROPERTY,
  type LocatedPciDevice,
} from './domain-xml.js';
import {
  addAttribute,
  appendChild,
  applySplices,
  layoutOf,
  qualified,
  removeAttribute,
  removeElement,
  replaceElement,
  type Layout,
  type Lines,
  type Splice,
} from './xml-splice.js';
import { attr, childrenNamed, firstChild, type XmlDocument, type XmlElement } from './xml-tree.js';

export interface EditResult {
  readonly xml: string;
  /** False when the definition already said what was asked: no need to `virsh define` it. */
  readonly changed: boolean;
}

const WHAT = 'domain definition';
const TOKEN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** libvirt applies `<qemu:override>` only to user aliases, which must start with this. */
const USER_ALIAS_PREFIX = 'ua-';
const DEFAULT_QEMU_PREFIX = 'qemu';

/** The user alias vfbroker gives the hostdev of a VF: `ua-vfbroker-0000-3b-02-1`. */
export function vfbrokerAlias(vf: PciAddress): string {
  return `${USER_ALIAS_PREFIX}vfbroker-${vf.replace(/[:.]/g, '-')}`;
}

export function attachVf(xml: string, vf: PciAddress, token: string): EditResult {
  checkToken(token);
  const doc = parseDomainXml(xml, WHAT);
  const existing = deviceFor(doc, vf);
  if (existing) {
    const { name } = domainIdentity(doc, WHAT);
    throw new VfbError(
      'CONFLICT',
      `VF ${vf} is already assigned to guest ${name} (<${existing.element.name}>)`,
      {
        hint: `run \`vfbroker guest sync ${name}\` to set its token`,
      },
    );
  }
  const devices = firstChild(doc.root, 'devices');
  if (!devices) throw new VfbError('INVALID_ARGUMENT', `${WHAT} has no <devices> element to add the VF to`);
  const layout = layoutOf(doc);
  const alias = vfbrokerAlias(vf);
  const splices = [
    appendChild(doc, devices, hostdevLines(vf, alias, layout), layout),
    ...setToken(doc, alias, token, layout),
  ];
  return { xml: applySplices(xml, splices), changed: true };
}

export function syncVfToken(xml: string, vf: PciAddress, token: string): EditResult {
  checkToken(token);
  const doc = parseDomainXml(xml, WHAT);
  const device = requireDevice(doc, vf);
  const layout = layoutOf(doc);
  const splices: Splice[] = [];
  let alias = device.alias;
  if (alias === null) {
    alias = vfbrokerAlias(vf);
    splices.push(appendChild(doc, device.element, [`<alias name='${alias}'/>`], layout));
  } else if (!alias.startsWith(USER_ALIAS_PREFIX)) {
    throw new VfbError(
      'INVALID_ARGUMENT',
      `the device of VF ${vf} has alias '${alias}', which is not a user alias (ua-…), so no token can reach it`,
      { hint: 'edit the definition from `virsh dumpxml --inactive`, not from the live XML' },
    );
  }
  splices.push(...setToken(doc, alias, token, layout));
  return splices.length === 0 ? { xml, changed: false } : { xml: applySplices(xml, splices), changed: true };
}

export function detachVf(xml: string, vf: PciAddress): EditResult {
  const doc = parseDomainXml(xml, WHAT);
  const device = requireDevice(doc, vf);
  const splices: Splice[] = [removeElement(xml, device.element)];
  const removed = new Set<XmlElement>([device.element]);
  for (const override of device.alias === null ? [] : qemuOverrides(doc)) {
    const ours = childrenNamed(override, 'device', QEMU_NS).filter((d) => attr(d, 'alias') === device.alias);
    if (ours.length === 0) continue;
    // An override left without children is removed whole, as libvirt would not print it either.
    const drop = ours.length === override.children.length ? [override] : ours;
    for (const el of drop) {
      splices.push(removeElement(xml, el));
      removed.add(el);
    }
  }
  if (!usesNamespace(doc.root, QEMU_NS, removed)) {
    // libvirt declares the qemu namespace only while the definition uses it; do the same.
    const declaration = qemuDeclaration(doc);
    const splice = declaration && removeAttribute(xml, doc.root, declaration);
    if (splice) splices.push(splice);
  }
  return { xml: applySplices(xml, splices), changed: true };
}

function checkToken(token: string): void {
  // Never quote the value: a malformed token may still be most of a real one.
  if (!TOKEN.test(token)) throw new VfbError('INVALID_ARGUMENT', 'the VF token is not a lower-case UUID');
}

function deviceFor(doc: XmlDocument, vf: PciAddress): LocatedPciDevice | undefined {
  return locatePciDevices(doc, WHAT).find((d) => d.address === vf);
}

function requireDevice(doc: XmlDocument, vf: PciAddress): LocatedPciDevice {
  const device = deviceFor(doc, vf);
  if (device) return device;
  const { name } = domainIdentity(doc, WHAT);
  throw new VfbError('NOT_FOUND', `guest ${name} has no device for VF ${vf}`, {
    hint: `run \`vfbroker guest attach ${name} ${vf}\` to add it`,
  });
}

function hostdevLines(vf: PciAddress, alias: string, layout: Layout): Lines {
  const [domain, bus, slotFn] = vf.split(':') as [string, string, string];
  const [slot, fn] = slotFn.split('.') as [string, string];
  const u = layout.unit;
  return [
    `<hostdev mode='subsystem' type='pci' managed='yes'>`,
    `${u}<source>`,
    `${u}${u}<address domain='0x${domain}' bus='0x${bus}' slot='0x${slot}' function='0x${fn}'/>`,
    `${u}</source>`,
    `${u}<alias name='${alias}'/>`,
    `</hostdev>`,
  ];
}

/** Splices that make the override for `alias` present `token`; none when it already does. */
function setToken(doc: XmlDocument, alias: string, token: string, layout: Layout): Splice[] {
  const devices = qemuOverrides(doc)
    .flatMap((o) => childrenNamed(o, 'device', QEMU_NS))
    .filter((d) => attr(d, 'alias') === alias);
  if (devices.length > 0) return devices.flatMap((d) => setDeviceToken(doc, d, token, layout));
  const override = qemuOverrides(doc)[0];
  if (override)
    return [appendChild(doc, override, deviceLines(override.prefix, alias, token, layout), layout)];
  const declared = qemuDeclaration(doc);
  const prefix = declared?.slice('xmlns:'.length) ?? DEFAULT_QEMU_PREFIX;
  const splices: Splice[] = [];
  if (declared === undefined) {
    if (doc.root.attributes.has(`xmlns:${prefix}`)) {
      throw new VfbError(
        'INVALID_ARGUMENT',
        `${WHAT} binds the prefix '${prefix}' to another namespace than libvirt's qemu one`,
      );
    }
    splices.push(addAttribute(doc.root, `xmlns:${prefix}`, QEMU_NS));
  }
  const u = layout.unit;
  const lines = [
    `<${qualified(prefix, 'override')}>`,
    ...deviceLines(prefix, alias, token, layout).map((l) => u + l),
    `</${qualified(prefix, 'override')}>`,
  ];
  splices.push(appendChild(doc, doc.root, lines, layout));
  return splices;
}

/** An existing `<qemu:device>` for the alias (possibly the user's own): set or add its vf-token. */
function setDeviceToken(doc: XmlDocument, device: XmlElement, token: string, layout: Layout): Splice[] {
  const properties = vfTokenProperties(device);
  if (properties.length > 0) {
    return properties
      .filter((p) => attr(p, 'type') !== 'string' || attr(p, 'value') !== token)
      .map((p) => replaceElement(doc.source, p, [propertyLine(p.prefix, token)], layout));
  }
  const frontend = firstChild(device, 'frontend', QEMU_NS);
  if (frontend) return [appendChild(doc, frontend, [propertyLine(frontend.prefix, token)], layout)];
  return [appendChild(doc, device, frontendLines(device.prefix, token, layout), layout)];
}

function deviceLines(prefix: string, alias: string, token: string, layout: Layout): Lines {
  const u = layout.unit;
  return [
    `<${qualified(prefix, 'device')} alias='${alias}'>`,
    ...frontendLines(prefix, token, layout).map((l) => u + l),
    `</${qualified(prefix, 'device')}>`,
  ];
}

function frontendLines(prefix: string, token: string, layout: Layout): Lines {
  return [
    `<${qualified(prefix, 'frontend')}>`,
    layout.unit + propertyLine(prefix, token),
    `</${qualified(prefix, 'frontend')}>`,
  ];
}

function propertyLine(prefix: string, token: string): string {
  return `<${qualified(prefix, 'property')} name='${VF_TOKEN_PROPERTY}' type='string' value='${token}'/>`;
}

/** The `xmlns:…` attribute of `<domain>` that binds libvirt's qemu namespace, if any. */
function qemuDeclaration(doc: XmlDocument): string | undefined {
  for (const [name, value] of doc.root.attributes) {
    if (name.startsWith('xmlns:') && value === QEMU_NS) return name;
  }
  return undefined;
}

function usesNamespace(el: XmlElement, uri: string, removed: ReadonlySet<XmlElement>): boolean {
  if (removed.has(el)) return false;
  if (el.uri === uri) return true;
  return el.children.some((c) => usesNamespace(c, uri, removed));
}
