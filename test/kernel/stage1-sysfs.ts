/**
 * Stage 1, in the guest as root: the sysfs case table (test/cases/sysfs-cases.ts), unchanged, against
 * the real /sys through RealSysfs, with QEMU's emulated 82576 as the PF.
 *
 *   node stage1-sysfs.js <PF>     the PF on the kernel igb driver; igbvf, vfio-pci (enable_sriov=1)
 *                                 and pci-pf-stub loaded
 *
 * The target describes the guest exactly as test/unit/sysfs/cases.test.ts describes its simulated
 * twin (test/fixtures/hosts/qemu-igb-guest.yaml): the device's figures are stated, not read from
 * sysfs, so a case comparing them with what sysfs shows tests the kernel rather than itself.
 */
import { execFileSync } from 'node:child_process';
import { parsePciAddress } from '../../src/pci/address.js';
import { RealSysfs } from '../../src/sysfs/real.js';
import { SYSFS_CASES, restorePf, runSysfsCases, type CaseTarget } from '../cases/sysfs-cases.js';
import { CaseReport } from './report.js';

const report = new CaseReport('1');

async function main(pf: string): Promise<void> {
  const target: CaseTarget = {
    sysfs: new RealSysfs(),
    pf: parsePciAddress(pf),
    pfKernelDriver: 'igb',
    vfKernelDriver: 'igbvf',
    stubDriver: 'pci-pf-stub',
    // QEMU's igb model offers 8 VFs; Linux's igb lowers sriov_totalvfs to 7 while it is bound.
    totalVfs: 8,
    driverVfLimit: 7,
    // busybox dmesg: the whole ring buffer, oldest line first.
    readKernelLog: () => Promise.resolve(execFileSync('dmesg', { encoding: 'utf8' }).split('\n')),
    reset: () => restorePf(target),
  };
  // One case at a time, so each line is out before the next case starts: a guest that hangs still
  // shows how far it got.
  for (const c of SYSFS_CASES) {
    for (const r of await runSysfsCases(target, [c])) {
      if (r.skipped) report.skip(r.name, r.detail);
      else report.record(r.name, r.ok, r.detail);
    }
  }
}

await report.run(() => main(process.argv[2] ?? ''));
