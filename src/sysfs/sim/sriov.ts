/**
 * Writing sriov_numvfs (drivers/pci/iov.c sriov_numvfs_store) and the drivers' sriov_configure
 * callbacks. The order of the checks is the kernel's, and it shows: a count above sriov_totalvfs is
 * ERANGE even on a PF without a driver, and writing the current count succeeds even then. The bound
 * driver's own limit is in sriov_totalvfs (igb: 7 of 8), so it is ERANGE too, before the driver is asked.
 */
import { disableVfs, enableVfs, findDriver, klog } from './core.js';
import { kstrtou16 } from './kstrtox.js';
import { refuse } from './refusal.js';
import type { DeviceState, DriverModel, SimState, SriovState } from './state.js';

export function storeNumVfs(state: SimState, pf: DeviceState, sriov: SriovState, raw: string): void {
  const parsed = kstrtou16(raw);
  // Every parse failure is EINVAL here, overflow included: the store does not pass kstrtou16's ERANGE on.
  if ('error' in parsed) refuse('EINVAL');
  const n = parsed.value;
  if (n > sriov.driverMaxVfs) refuse('ERANGE');
  if (n === sriov.numVfs) return;
  const drv = findDriver(state, pf.driver);
  if (drv === undefined) {
    klog(state, pf, 'no driver bound to device; cannot configure SR-IOV');
    refuse('ENOENT');
  }
  if (!drv.sriovConfigure) {
    klog(state, pf, 'driver does not support SR-IOV configuration via sysfs');
    refuse('ENOENT');
  }
  if (n !== 0 && sriov.numVfs !== 0) {
    klog(state, pf, `${sriov.numVfs} VFs already enabled. Disable before enabling ${n} VFs`);
    refuse('EBUSY');
  }
  sriovConfigure(state, pf, drv, n);
}

function sriovConfigure(state: SimState, pf: DeviceState, drv: DriverModel, n: number): void {
  // vfio_pci_sriov_configure checks its module parameter first, for enabling and disabling alike.
  if (drv.kind === 'vfio-pci' && state.modules[drv.module]?.['enable_sriov'] !== 'Y') refuse('ENOENT');
  if (n === 0) {
    disableVfs(state, pf);
    return;
  }
  enableVfs(state, pf, n);
}
