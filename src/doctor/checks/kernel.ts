/**
 * Check `kernel`: whether this kernel checks VF tokens on every path a VF can be opened through
 * (REFERENCE.md §1). The legacy group path (/dev/vfio/<group>) has checked them since 5.7. The
 * cdev path (/dev/vfio/devices/vfioN with iommufd, since 6.6) checked none until 6.17, and the
 * 6.17 check (VFIO_DEVICE_BIND_FLAG_TOKEN, commit 86624ba3b522) failed a bind that carries the
 * token with E2BIG until commit 2f03f21fe751 (6.18.3 stable).
 */
import type { DoctorContext } from '../context.js';
import { findings, type Finding } from '../finding.js';
import { atLeast, formatVersion } from '../version.js';

const CDEV = '/dev/vfio/devices';

export function checkKernel(ctx: DoctorContext): Finding {
  const { release, version, cdev } = ctx.kernel;
  const f = findings('kernel', null);
  if (version === null) {
    return f('skip', `cannot tell the version of kernel release ${JSON.stringify(release.slice(0, 64))}`);
  }
  const linux = `Linux ${formatVersion(version)}`;
  if (!atLeast(version, 5, 7)) {
    return f(
      'fail',
      `${linux} has no VF tokens`,
      'vfio-pci can drive an SR-IOV PF, and guard its VFs with a token, from Linux 5.7 on',
      'boot Linux 5.7 or later',
    );
  }
  if (!cdev || !atLeast(version, 6, 6)) {
    return f('ok', `${linux} opens VFs only through VFIO groups, which check the VF token`);
  }
  if (!atLeast(version, 6, 17)) {
    return f(
      'warn',
      `${linux} offers the VFIO cdev path (${CDEV}), which checks no VF token`,
      `Linux 6.6 to 6.16 check the token only on the group path (/dev/vfio/<group>): whoever may open a VF's ${CDEV}/vfioN and /dev/iommu (QEMU with iommufd, a DPDK application) opens the VF without it`,
      `boot Linux 6.18.3 or later; until then keep ${CDEV}/* and /dev/iommu root-only and give guests no <driver iommufd='yes'/>`,
    );
  }
  if (!atLeast(version, 6, 18, 3)) {
    return f(
      'warn',
      `${linux} checks VF tokens on the VFIO cdev path (${CDEV}) but fails a bind that carries one (E2BIG)`,
      'Linux 6.17 to 6.18.2 require the token when a VF is bound through iommufd but fail the bind that carries it with E2BIG (fixed by commit 2f03f21fe751 in 6.18.3): a VF of a vfio-pci PF cannot be opened through the cdev path at all; the group path works',
      'boot Linux 6.18.3 or later (or a kernel with commit 2f03f21fe751 backported); meanwhile open VFs through /dev/vfio/<group>',
    );
  }
  return f('ok', `${linux} checks the VF token on both the VFIO group and the cdev path`);
}
