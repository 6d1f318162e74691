/**
 * Check `vf-driver`: the VFs of a PF on vfio-pci are on vfio-pci too (or unbound, waiting for
 * libvirt or DPDK to bind them). The kernel checks a VF token only when a VF is opened through VFIO:
 * a VF bound to a host driver (igbvf, iavf…) is used outside the token's protection, and vfio-pci
 * logs "VF … bound to driver … while PF bound to driver vfio-pci" when that happens.
 */
import type { PciAddress } from '../../pci/address.js';
import { VFIO_PCI } from '../../plugins/lifecycle/vfio.js';
import { configuredPf, type DoctorContext } from '../context.js';
import { findings, type Finding } from '../finding.js';
import type { PfGroup } from '../scope.js';
import { bindToVfioPci } from './commands.js';

interface Stray {
  readonly vf: PciAddress;
  readonly driver: string | null;
}

export async function checkVfDrivers(ctx: DoctorContext, group: PfGroup): Promise<Finding> {
  const only = group.vfs.length === 1 ? group.vfs[0] : undefined;
  const f = findings('vf-driver', only ?? group.pf);
  const sysfs = ctx.env.sysfs;
  const which = only === undefined ? `the ${group.vfs.length} VFs of PF ${group.pf}` : `VF ${only}`;
  if (group.vfs.length === 0) return f('skip', `PF ${group.pf} has no VFs`);
  const pfDriver = (await sysfs.exists(group.pf)) ? await sysfs.driver(group.pf) : null;
  if (pfDriver !== VFIO_PCI)
    return f('skip', `${which}: no VF token involved (PF on ${pfDriver ?? 'no driver'})`);

  // A driver the configuration asks for explicitly (a plugin's vfDriver option) is no accident.
  const asked = configuredPf(ctx, group.pf)?.options['vfDriver'];
  const strays: Stray[] = [];
  let waiting = 0;
  for (const vf of group.vfs) {
    const driver = await sysfs.driver(vf);
    if (driver === VFIO_PCI || driver === asked) continue;
    // Unbound with vfio-pci's override: libvirt (managed='yes') or DPDK binds it when it opens it.
    if (driver === null && (await sysfs.readAttribute(vf, 'driver_override')) === VFIO_PCI) waiting++;
    else strays.push({ vf, driver });
  }
  if (strays.length === 0) {
    const are = only === undefined ? 'are' : 'is';
    return f(
      'ok',
      `${which} ${are} on vfio-pci${waiting === 0 ? '' : ' or unbound with driver_override=vfio-pci'}`,
    );
  }
  const listed = strays.map((s) => `${s.vf} (${s.driver ?? 'unbound'})`).join(', ');
  return f(
    'warn',
    `${strays.length === 1 ? 'VF' : 'VFs'} ${listed} of PF ${group.pf} ${strays.length === 1 ? 'is' : 'are'} not on vfio-pci`,
    'the kernel checks the VF token only when a VF is opened through VFIO: a VF on a host driver is used outside its protection',
    strays.map((s) => bindToVfioPci(s.vf, s.driver !== null)).join(' && '),
  );
}
