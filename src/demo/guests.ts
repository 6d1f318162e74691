/**
 * The demo's guests: the example definitions in src/demo/assets/, with their VFs and vf-tokens
 * added at run time by the same edits `vfbroker guest attach` and `guest sync` make (domain-edit.ts),
 * tokens fetched from the broker over D-Bus as root would. Each definition is also written to the
 * workspace (0600: it carries tokens), where the hook can be run on it by hand after --keep.
 */
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrokerClient } from '../dbus/client.js';
import { VfbError } from '../errors.js';
import { attachVf, syncVfToken } from '../libvirt/domain-edit.js';
import { readDomainXml } from '../libvirt/domain-xml.js';
import type { PciAddress } from '../pci/address.js';
import type { Sysfs } from '../sysfs/sysfs.js';
import { ASSETS, CX5_PF, FEC_PF, IGB_PF, type DemoPf } from './host.js';
import type { Workspace } from './workspace.js';

export interface GuestPlan {
  readonly file: string;
  /** Why the demo has this guest, in one line. */
  readonly story: string;
  /** VFs the demo attaches, each with the PF's active token or one the PF does not use. */
  readonly attach: readonly {
    readonly pf: DemoPf;
    readonly vf: number;
    readonly token: 'active' | 'other';
  }[];
  /** VFs the definition has already, which need no token. */
  readonly present: readonly { readonly pf: DemoPf; readonly vf: number }[];
}

export const AUTHORISED: GuestPlan = {
  file: 'vdu-1.xml',
  story: 'authorised for its VFs; its definition carries the active tokens',
  attach: [
    { pf: IGB_PF, vf: 0, token: 'active' },
    { pf: FEC_PF, vf: 0, token: 'active' },
  ],
  present: [{ pf: CX5_PF, vf: 0 }],
};

export const STALE: GuestPlan = {
  file: 'vdu-2.xml',
  story: 'authorised for its VF, but its definition carries a token the PF does not use',
  attach: [{ pf: FEC_PF, vf: 1, token: 'other' }],
  present: [],
};

export const UNAUTHORISED: GuestPlan = {
  file: 'scratch-vm.xml',
  story: 'granted nothing by policy.yaml, yet its definition carries the active token',
  attach: [{ pf: IGB_PF, vf: 1, token: 'active' }],
  present: [],
};

export interface GuestVf {
  readonly address: PciAddress;
  readonly pf: DemoPf;
  readonly index: number;
  readonly token: 'active' | 'other' | 'none';
}

export interface DemoGuest {
  readonly name: string;
  readonly uuid: string;
  readonly story: string;
  readonly vfs: readonly GuestVf[];
  /** The definition as it stands now. */
  readonly xml: string;
  readonly file: string;
}

type VfLookup = Pick<Sysfs, 'virtfns'>;

/** `vfbroker guest attach`, for each VF the plan names, on the example definition. */
export async function defineGuest(
  ws: Workspace,
  plan: GuestPlan,
  host: VfLookup,
  client: BrokerClient,
): Promise<DemoGuest> {
  let xml = await readFile(join(ASSETS, plan.file), 'utf8');
  const { name, uuid } = readDomainXml(xml, plan.file);
  const vfs: GuestVf[] = [];
  for (const { pf, vf } of plan.present) {
    vfs.push({ address: await vfAddress(host, pf, vf), pf, index: vf, token: 'none' });
  }
  for (const { pf, vf, token } of plan.attach) {
    const address = await vfAddress(host, pf, vf);
    // A token of the right shape that the PF does not use: what a copied definition would carry.
    const value = token === 'active' ? await client.getToken(address) : randomUUID();
    xml = attachVf(xml, address, value).xml;
    vfs.push({ address, pf, index: vf, token });
  }
  return save({ name, uuid, story: plan.story, vfs, xml, file: join(ws.guests, `${name}.xml`) });
}

/** `vfbroker guest sync`: every token-carrying VF of the guest on `pf` gets the PF's active token. */
export async function syncGuest(guest: DemoGuest, pf: DemoPf, client: BrokerClient): Promise<DemoGuest> {
  let xml = guest.xml;
  for (const vf of guest.vfs) {
    if (vf.pf !== pf || vf.token === 'none') continue;
    xml = syncVfToken(xml, vf.address, await client.getToken(vf.address)).xml;
  }
  return save({ ...guest, xml });
}

async function vfAddress(host: VfLookup, pf: DemoPf, index: number): Promise<PciAddress> {
  const vfs = await host.virtfns(pf.address);
  const vf = vfs[index];
  if (vf === undefined) {
    throw new VfbError('NOT_FOUND', `the simulated ${pf.card} at ${pf.address} has no VF ${index}`, {
      hint: 'the broker did not enable its VFs: read broker.log in the demo directory',
    });
  }
  return vf;
}

async function save(guest: DemoGuest): Promise<DemoGuest> {
  await writeFile(guest.file, guest.xml, { mode: 0o600 });
  return guest;
}
