/**
 * Writing VF tokens into guests' persistent definitions, for `vfbroker guest sync` and for the last
 * step of a rotation. Each definition is read with `virsh dumpxml --inactive`, edited in place
 * (src/libvirt/domain-edit.ts) and defined again only when something changed. Never called from
 * inside the libvirt hook.
 */
import { syncVfToken } from './domain-edit.js';
import { readDomainXml } from './domain-xml.js';
import type { Virsh } from './virsh.js';
import type { PciAddress } from '../pci/address.js';

/**
 * The token a guest should present for a VF, or null to leave that VF alone (none of vfbroker's
 * business, or a guest the policy does not authorise for it).
 */
export type TokenFor = (
  vf: PciAddress,
  guest: { readonly uuid: string; readonly name: string },
) => Promise<string | null>;

export interface SyncResult {
  readonly domain: string;
  readonly uuid: string;
  /** VFs whose token is now the one asked for. */
  readonly vfs: readonly PciAddress[];
  /** False when the definition already carried every token: nothing was defined. */
  readonly changed: boolean;
}

/** The VFs a definition passes through (hostdevs and hostdev interfaces with an address). */
export function definitionVfs(xml: string, what: string): { uuid: string; name: string; vfs: PciAddress[] } {
  const info = readDomainXml(xml, what);
  const vfs = info.pciDevices
    .filter((d) => d.kind !== 'interface-network')
    .flatMap((d) => (d.address === null ? [] : [d.address]));
  return { uuid: info.uuid, name: info.name, vfs: [...new Set(vfs)] };
}

/** Brings every token in a guest's definition up to date; `only` limits it to some VFs. */
export async function syncDefinition(
  virsh: Virsh,
  domain: string,
  tokenFor: TokenFor,
  only?: (vf: PciAddress) => boolean,
): Promise<SyncResult> {
  const original = await virsh.dumpXmlInactive(domain);
  const { uuid, name, vfs } = definitionVfs(original, `definition of ${domain}`);
  let xml = original;
  let changed = false;
  const synced: PciAddress[] = [];
  const secrets: string[] = [];
  for (const vf of vfs) {
    if (only && !only(vf)) continue;
    const token = await tokenFor(vf, { uuid, name });
    if (token === null) continue;
    const edit = syncVfToken(xml, vf, token);
    xml = edit.xml;
    changed ||= edit.changed;
    synced.push(vf);
    secrets.push(token);
  }
  if (changed) await virsh.define(xml, secrets);
  return { domain, uuid, vfs: synced, changed };
}
