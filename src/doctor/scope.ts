/**
 * Which PFs and VFs the per-device checks look at: every VF of every PF in broker.yaml, the one
 * device `--vf` names, or the PCI devices of the guest `--guest` names. Devices are grouped by PF,
 * because most of what decides whether a VF opens (the PF's driver, its token) belongs to its PF.
 */
import { isVfbError } from '../errors.js';
import type { PciAddress } from '../pci/address.js';
import type { Sysfs } from '../sysfs/sysfs.js';
import type { DoctorContext } from './context.js';
import { findings, type Finding } from './finding.js';

export interface PfGroup {
  readonly pf: PciAddress;
  /** The VFs in question: all of the PF's, or the ones the target names. */
  readonly vfs: readonly PciAddress[];
}

export interface Scope {
  readonly groups: readonly PfGroup[];
  /** What resolving the target found out about the devices it names (`device` findings). */
  readonly findings: readonly Finding[];
}

export async function resolveScope(ctx: DoctorContext): Promise<Scope> {
  const sysfs = ctx.env.sysfs;
  switch (ctx.target.kind) {
    case 'host': {
      const groups = await Promise.all(
        (ctx.config?.pfs ?? []).map(async (pf) => ({
          pf: pf.address,
          vfs: (await sysfs.exists(pf.address)) ? await sysfs.virtfns(pf.address) : [],
        })),
      );
      return { groups, findings: [] };
    }
    case 'vf': {
      const found = await classify(sysfs, ctx.target.address, true);
      return { groups: found.group ? [found.group] : [], findings: [found.finding] };
    }
    case 'guest': {
      const view = ctx.guest && 'view' in ctx.guest ? ctx.guest.view : null;
      const addresses = [
        ...new Set(view?.devices.flatMap((d) => (d.address === null ? [] : [d.address])) ?? []),
      ];
      const found = await Promise.all(addresses.map((a) => classify(sysfs, a, false)));
      return {
        groups: mergeGroups(found.flatMap((f) => (f.group ? [f.group] : []))),
        findings: found.map((f) => f.finding),
      };
    }
  }
}

interface Classified {
  readonly finding: Finding;
  readonly group: PfGroup | null;
}

/** A VF joins its PF's group; a PF named by --vf brings all its VFs; anything else involves no token. */
async function classify(sysfs: Sysfs, address: PciAddress, pfWithVfs: boolean): Promise<Classified> {
  const device = findings('device', address);
  if (!(await sysfs.exists(address))) {
    return {
      finding: device(
        'fail',
        `there is no PCI device ${address} on this host`,
        'a VF exists only while its PF has SR-IOV enabled',
        'lspci -D lists the devices; the PFs in broker.yaml get their VFs when they are brought up (vfbroker pf up --all)',
      ),
      group: null,
    };
  }
  const pf = await sysfs.physfn(address);
  if (pf !== null) {
    const index = (await sysfs.virtfns(pf)).indexOf(address);
    return {
      finding: device('ok', `${address} is VF ${index} of PF ${pf}`),
      group: { pf, vfs: [address] },
    };
  }
  if (pfWithVfs && (await isSriovCapable(sysfs, address))) {
    const vfs = await sysfs.virtfns(address);
    return {
      finding: device('ok', `${address} is a PF with ${vfs.length} VF(s): checking it and its VFs`),
      group: { pf: address, vfs },
    };
  }
  return {
    finding: device(
      'skip',
      `${address} is not a VF: no VF token is involved in opening it`,
      'the kernel checks a VF token only when a VF of a PF on vfio-pci is opened',
    ),
    group: null,
  };
}

async function isSriovCapable(sysfs: Sysfs, address: PciAddress): Promise<boolean> {
  try {
    await sysfs.readAttribute(address, 'sriov_totalvfs');
    return true;
  } catch (err) {
    if (isVfbError(err, 'KERNEL_REFUSED') && err.details['errno'] === 'ENOENT') return false;
    throw err;
  }
}

function mergeGroups(groups: readonly PfGroup[]): PfGroup[] {
  const byPf = new Map<PciAddress, PciAddress[]>();
  for (const g of groups) byPf.set(g.pf, [...(byPf.get(g.pf) ?? []), ...g.vfs]);
  return [...byPf].map(([pf, vfs]) => ({ pf, vfs }));
}
