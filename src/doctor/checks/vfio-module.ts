/**
 * Check `vfio-pci`: the module is loaded with enable_sriov on. Without it vfio-pci refuses to
 * create VFs on a PF it drives (sriov_numvfs answers ENOENT), so no PF can hold a token for its VFs.
 */
import { MODPROBE_CONF } from '../../plugins/lifecycle/vfio.js';
import { VFIO_PCI } from '../../plugins/lifecycle/vfio.js';
import type { DoctorContext } from '../context.js';
import { findings, type Finding } from '../finding.js';

const PARAMETER = '/sys/module/vfio_pci/parameters/enable_sriov';
const PERSIST = `echo 'options vfio-pci enable_sriov=1' > ${MODPROBE_CONF}`;
const WHY =
  'a PF driven from userspace through vfio-pci is what gives its VFs a token, and vfio-pci creates VFs only with enable_sriov on';

export async function checkVfioModule(ctx: DoctorContext): Promise<Finding> {
  const sysfs = ctx.env.sysfs;
  const finding = findings('vfio-pci', null);
  const loaded = (await sysfs.listDrivers()).includes(VFIO_PCI);
  if (!loaded) {
    return finding('fail', 'vfio-pci is not loaded', WHY, `modprobe vfio-pci enable_sriov=1 && ${PERSIST}`);
  }
  const value = await sysfs.moduleParameter('vfio_pci', 'enable_sriov');
  if (value === null) {
    return finding(
      'fail',
      'vfio-pci has no enable_sriov parameter: this kernel predates VF tokens',
      'VF tokens and SR-IOV on vfio-pci came with Linux 5.7',
      'boot Linux 5.7 or later',
    );
  }
  if (value === 'Y' || value === '1') return finding('ok', 'vfio-pci is loaded with enable_sriov=Y');
  // A host whose PFs all keep a kernel driver (ConnectX-5) needs no VF token and so not this either.
  if (ctx.broker.reachable && ctx.broker.pfs.length > 0 && !ctx.broker.pfs.some((p) => p.needsToken)) {
    return finding(
      'ok',
      `vfio-pci is loaded with enable_sriov=${value}, and no PF the broker manages needs a VF token`,
    );
  }
  return finding(
    'fail',
    `vfio-pci is loaded with enable_sriov=${value}`,
    WHY,
    `echo Y > ${PARAMETER} && ${PERSIST} (vfio-pci built into the kernel: add vfio-pci.enable_sriov=1 to the kernel command line)`,
  );
}
