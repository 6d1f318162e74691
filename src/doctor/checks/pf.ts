/**
 * Checks `pf-configured` and `pf-driver`: whether vfbroker manages the PF, and whether the PF's
 * driver gives its VFs a token at all. Only a PF on vfio-pci does (REFERENCE.md §1): on a kernel
 * driver (mlx5_core) no token is involved, and on a UIO driver (igb_uio, uio_pci_generic) the VFs
 * exist but nothing guards them.
 */
import { VFIO_PCI } from '../../plugins/lifecycle/vfio.js';
import type { PciAddress } from '../../pci/address.js';
import { brokerPf, configuredPf, type DoctorContext } from '../context.js';
import { findings, type Finding } from '../finding.js';
import { JOURNAL, RESTART, bindToVfioPci, pfUp } from './commands.js';

/** Drivers through which DPDK enables SR-IOV on a PF without VFIO, and so without a VF token. */
const UIO_DRIVERS: readonly string[] = ['igb_uio', 'uio_pci_generic'];

export async function checkPfConfigured(ctx: DoctorContext, pf: PciAddress): Promise<Finding> {
  const f = findings('pf-configured', pf);
  if (ctx.config === null) return f('skip', `not checked: ${ctx.configPath} could not be read`);
  const entry = configuredPf(ctx, pf);
  if (entry !== undefined) {
    return f(
      'ok',
      `PF ${pf} is in ${ctx.configPath} (plugin ${entry.plugin ?? 'chosen by PCI ID'}, ${entry.vfs} VFs)`,
    );
  }
  const sysfs = ctx.env.sysfs;
  if (!(await sysfs.exists(pf)) || (await sysfs.driver(pf)) !== VFIO_PCI) {
    return f('skip', `PF ${pf} is not in ${ctx.configPath}: vfbroker does not manage it`);
  }
  const vfs = (await sysfs.virtfns(pf)).length || Number(await sysfs.readAttribute(pf, 'sriov_totalvfs'));
  return f(
    'fail',
    `PF ${pf} is on vfio-pci but not in ${ctx.configPath}`,
    'its VFs need the token of a PF vfbroker does not manage: the broker answers unknown-vf for them, and the libvirt hook refuses guests that use them',
    `add "- { address: '${pf}', vfs: ${vfs} }" under pfs: in ${ctx.configPath}, then ${RESTART}`,
  );
}

export async function checkPfDriver(ctx: DoctorContext, pf: PciAddress): Promise<Finding> {
  const f = findings('pf-driver', pf);
  const sysfs = ctx.env.sysfs;
  if (!(await sysfs.exists(pf))) {
    return f(
      'fail',
      `there is no PCI device ${pf} on this host`,
      'a PF that is not there has no VFs',
      `lspci -D lists the devices; correct the address in ${ctx.configPath}`,
    );
  }
  const driver = await sysfs.driver(pf);
  const vfs = (await sysfs.virtfns(pf)).length;
  const configured = configuredPf(ctx, pf) !== undefined;
  if (driver === VFIO_PCI) {
    return f('ok', `PF ${pf} is on vfio-pci with ${vfs} VF(s): opening them needs its VF token`);
  }
  if (driver === null) {
    return f(
      'fail',
      `PF ${pf} has no driver`,
      'its VFs exist only while a driver has SR-IOV enabled on it, and only vfio-pci gives them a token',
      configured
        ? `${pfUp(pf)} (it binds the PF to its plugin's driver); ${JOURNAL} says why it is not`
        : `list it under pfs: in ${ctx.configPath}, then ${RESTART}`,
    );
  }
  if (UIO_DRIVERS.includes(driver)) {
    return f(
      'fail',
      `PF ${pf} is on ${driver} with ${vfs} VF(s): they have no token protection`,
      `only a PF on vfio-pci gives its VFs a token; VFs created through ${driver} open for anyone who may open them, and no token can be set on such a PF`,
      `stop the application that drives the PF, then: echo 0 > /sys/bus/pci/devices/${pf}/sriov_numvfs && ` +
        `modprobe vfio-pci enable_sriov=1 && ${bindToVfioPci(pf, true)}; ` +
        `then list it under pfs: in ${ctx.configPath} and ${RESTART} (the broker creates the VFs and sets their token)`,
    );
  }
  if (configured && !ctx.broker.reachable) {
    return f(
      'skip',
      `PF ${pf} is on ${driver}; whether its plugin wants it on vfio-pci only the broker can tell, and it is not reachable`,
    );
  }
  const summary = brokerPf(ctx, pf);
  if (summary?.needsToken === true) {
    return f(
      'fail',
      `PF ${pf} is on ${driver}, but its plugin ${summary.plugin} drives it from vfio-pci`,
      'until the PF is on vfio-pci nothing guards its VFs with a token, and the broker has none to hand out',
      `${pfUp(pf)} (it binds the PF to vfio-pci); ${JOURNAL} says why it is not`,
    );
  }
  return f(
    'ok',
    `PF ${pf} is on ${driver}: its VFs need no VF token`,
    'the kernel checks a VF token only for VFs of a PF on vfio-pci',
  );
}
