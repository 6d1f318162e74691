/**
 * One table of kernel-behaviour cases for the Sysfs interface. Each case drives a PF through sysfs
 * and states the answer Linux gives (a value read back, or an errno). The same table runs against
 * the simulator built from test/fixtures/hosts/qemu-igb-guest.yaml (test/unit/sysfs/cases.test.ts)
 * and, inside the real-kernel guest, against /sys with QEMU's emulated 82576 on igb and vfio-pci
 * loaded with enable_sriov=1. Where the two disagree, the kernel is right and the simulator is fixed.
 *
 * Cases use nothing but the Sysfs interface (and the kernel log when the target can read it), never
 * the simulator's internals, and each starts from CaseTarget.reset()'s state. runSysfsCases prints
 * nothing: the caller reports (`N passed, M failed`).
 */
import { VfbError } from '../../src/errors.js';
import { formatPciAddress, parsePciAddressParts, type PciAddress } from '../../src/pci/address.js';
import { errnoOfRefusal } from '../../src/sysfs/errno.js';
import type { DeviceAttribute, Sysfs } from '../../src/sysfs/sysfs.js';

export interface CaseTarget {
  readonly sysfs: Sysfs;
  /** An SR-IOV PF the cases may reconfigure at will. */
  readonly pf: PciAddress;
  /** The kernel driver the PF starts on and goes back to (igb). */
  readonly pfKernelDriver: string;
  /** The loaded driver that takes the PF's VFs (igbvf), or null when none is loaded. */
  readonly vfKernelDriver: string | null;
  /** A loaded driver with sriov_configure whose remove() leaves the VFs enabled (pci-pf-stub), or null. */
  readonly stubDriver: string | null;
  /** The device's TotalVFs: sriov_totalvfs with no driver bound, or on vfio-pci. */
  readonly totalVfs: number;
  /**
   * sriov_totalvfs while pfKernelDriver is bound: the limit its probe sets with
   * pci_sriov_set_totalvfs (igb: 7), or totalVfs when it sets none.
   */
  readonly driverVfLimit: number;
  /** Kernel log lines, oldest first (later calls return earlier lines first); null if unreadable. */
  readonly readKernelLog: (() => Promise<string[]>) | null;
  /** Back to the start: PF on pfKernelDriver, no VFs, no driver_override, autoprobe on (see restorePf). */
  reset(): Promise<void>;
}

export interface SysfsCase {
  readonly name: string;
  /** The kernel's answer, in words: what is read back, or which errno. */
  readonly expect: string;
  run(t: CaseTarget): Promise<void>;
}

export interface CaseResult {
  readonly name: string;
  /** True when the case passed or was skipped. */
  readonly ok: boolean;
  readonly skipped: boolean;
  /** One line: the expectation when passed, what differed when failed, why when skipped. */
  readonly detail: string;
}

const VFIO_PCI = 'vfio-pci';

/** Runs each case after a reset of the target, one at a time, and says how each went. */
export async function runSysfsCases(target: CaseTarget, cases: readonly SysfsCase[]): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) results.push(await runCase(target, c));
  return results;
}

async function runCase(t: CaseTarget, c: SysfsCase): Promise<CaseResult> {
  const result = (ok: boolean, skipped: boolean, detail: string): CaseResult => ({
    name: c.name,
    ok,
    skipped,
    detail: detail.replace(/\s+/g, ' '),
  });
  try {
    await t.reset();
  } catch (err) {
    return result(false, false, `reset before the case failed: ${describeError(err)}`);
  }
  try {
    await c.run(t);
    return result(true, false, c.expect);
  } catch (err) {
    if (err instanceof CaseSkipped) return result(true, true, `skipped: ${err.message}`);
    if (err instanceof CaseFailed) return result(false, false, err.message);
    return result(false, false, `unexpected error: ${describeError(err)}`);
  }
}

/**
 * The start state of the cases, reached from wherever a previous run left the PF: SR-IOV off
 * (borrowing stubDriver when VFs outlived their driver), then off any other driver, override
 * cleared, autoprobe on, reset methods back to default, bound to pfKernelDriver. What reset() does
 * on a real kernel.
 */
export async function restorePf(
  t: Pick<CaseTarget, 'sysfs' | 'pf' | 'pfKernelDriver' | 'stubDriver'>,
): Promise<void> {
  const { sysfs, pf } = t;
  if ((await sysfs.readAttribute(pf, 'sriov_numvfs')) !== '0') {
    if ((await sysfs.driver(pf)) === null) {
      // Only a driver with sriov_configure can remove VFs that outlived theirs.
      if (t.stubDriver === null)
        throw new Error(`${pf} has VFs but no driver, and no stub driver is loaded to remove them`);
      await sysfs.writeAttribute(pf, 'driver_override', t.stubDriver);
      await sysfs.probe(pf);
    }
    try {
      await sysfs.writeAttribute(pf, 'sriov_numvfs', '0');
    } catch (err) {
      // vfio-pci with enable_sriov off answers ENOENT; unbinding it below removes the VFs anyway.
      if (errnoOfRefusal(err) !== 'ENOENT') throw err;
    }
  }
  const driver = await sysfs.driver(pf);
  if (driver !== null && driver !== t.pfKernelDriver) await sysfs.unbind(pf);
  await sysfs.writeAttribute(pf, 'driver_override', '');
  await sysfs.writeAttribute(pf, 'sriov_drivers_autoprobe', '1');
  await sysfs.writeAttribute(pf, 'reset_method', 'default');
  if ((await sysfs.driver(pf)) === null) await sysfs.bind(pf, t.pfKernelDriver);
}

export const SYSFS_CASES: readonly SysfsCase[] = [
  {
    name: 'pf-starts-on-its-kernel-driver-with-sriov-off',
    expect:
      'driver = pfKernelDriver; sriov_numvfs "0"; sriov_totalvfs = driverVfLimit; driver_override "(null)"; sriov_drivers_autoprobe "1"; no virtfn, no physfn; vendor reads 0x-prefixed hex',
    async run(t) {
      same('driver', await t.sysfs.driver(t.pf), t.pfKernelDriver);
      same('sriov_numvfs', await read(t, t.pf, 'sriov_numvfs'), '0');
      same('sriov_totalvfs', await read(t, t.pf, 'sriov_totalvfs'), String(t.driverVfLimit));
      same('driver_override', await read(t, t.pf, 'driver_override'), '(null)');
      same('sriov_drivers_autoprobe', await read(t, t.pf, 'sriov_drivers_autoprobe'), '1');
      same('virtfns', await t.sysfs.virtfns(t.pf), []);
      same('physfn', await t.sysfs.physfn(t.pf), null);
      matches('vendor', await read(t, t.pf, 'vendor'), /^0x[0-9a-f]{4}$/);
      same('listed', (await t.sysfs.listDevices()).includes(t.pf), true);
    },
  },
  {
    name: 'enabling-vfs-creates-them-at-their-routing-ids',
    expect:
      'sriov_numvfs "2"; virtfn0 and virtfn1 at the PF routing ID + sriov_offset + sriov_stride × n; each VF has physfn = PF, the PF vendor, device = 0x<sriov_vf_device>, and is listed',
    async run(t) {
      const vfs = await enableVfs(t, 2);
      same('sriov_numvfs', await read(t, t.pf, 'sriov_numvfs'), '2');
      const offset = Number(await read(t, t.pf, 'sriov_offset'));
      const stride = Number(await read(t, t.pf, 'sriov_stride'));
      same('virtfns', vfs, [routedVf(t.pf, offset, stride, 0), routedVf(t.pf, offset, stride, 1)]);
      const vendor = await read(t, t.pf, 'vendor');
      const vfDevice = `0x${(await read(t, t.pf, 'sriov_vf_device')).padStart(4, '0')}`;
      const listed = await t.sysfs.listDevices();
      for (const vf of vfs) {
        same(`physfn of ${vf}`, await t.sysfs.physfn(vf), t.pf);
        same(`vendor of ${vf}`, await read(t, vf, 'vendor'), vendor);
        same(`device of ${vf}`, await read(t, vf, 'device'), vfDevice);
        same(`${vf} listed`, listed.includes(vf), true);
      }
    },
  },
  {
    name: 'a-vf-has-no-sriov-files',
    expect:
      'reading sriov_totalvfs of a VF → ENOENT; writing its sriov_numvfs → ENOENT; it has no virtfn links',
    async run(t) {
      const [vf] = await enableVfs(t, 1);
      if (vf === undefined) return fail('no VF after enabling one');
      await refused('read sriov_totalvfs of the VF', 'ENOENT', t.sysfs.readAttribute(vf, 'sriov_totalvfs'));
      await refused(
        'write sriov_numvfs of the VF',
        'ENOENT',
        t.sysfs.writeAttribute(vf, 'sriov_numvfs', '1'),
      );
      same('virtfns of the VF', await t.sysfs.virtfns(vf), []);
    },
  },
  {
    name: 'changing-a-nonzero-vf-count-is-ebusy',
    expect: 'with 2 VFs, writing 3 → EBUSY; sriov_numvfs stays "2"',
    async run(t) {
      await enableVfs(t, 2);
      await refused('sriov_numvfs 2 → 3', 'EBUSY', setNumVfs(t, '3'));
      same('sriov_numvfs', await read(t, t.pf, 'sriov_numvfs'), '2');
    },
  },
  {
    name: 'writing-the-current-vf-count-changes-nothing',
    expect: 'with 2 VFs, writing 2 succeeds and the same two VFs remain',
    async run(t) {
      const vfs = await enableVfs(t, 2);
      await setNumVfs(t, '2');
      same('virtfns', await t.sysfs.virtfns(t.pf), vfs);
    },
  },
  {
    name: 'more-vfs-than-totalvfs-is-erange',
    expect: 'writing totalVfs + 1 → ERANGE, also with no driver bound (checked first)',
    async run(t) {
      const tooMany = String(t.totalVfs + 1);
      await refused(`sriov_numvfs ${tooMany}`, 'ERANGE', setNumVfs(t, tooMany));
      await t.sysfs.unbind(t.pf);
      await refused(`sriov_numvfs ${tooMany} without a driver`, 'ERANGE', setNumVfs(t, tooMany));
    },
  },
  {
    name: 'a-vf-count-that-is-not-a-number-is-einval',
    expect: '"two", "-1", "1.5", "1 2", "65536" and "" → EINVAL; "0x1" is a number and enables 1 VF',
    async run(t) {
      for (const bad of ['two', '-1', '1.5', '1 2', '65536', '']) {
        await refused(`sriov_numvfs ${JSON.stringify(bad)}`, 'EINVAL', setNumVfs(t, bad));
      }
      await setNumVfs(t, '0x1');
      same('sriov_numvfs after "0x1"', await read(t, t.pf, 'sriov_numvfs'), '1');
    },
  },
  {
    name: 'the-driver-vf-limit-is-erange',
    expect:
      'PF on pfKernelDriver, whose probe lowered sriov_totalvfs to driverVfLimit: driverVfLimit + 1 VFs → ERANGE although the device has them (igb: 8 of 8), before the driver is asked; exactly driverVfLimit VFs works',
    async run(t) {
      if (t.driverVfLimit >= t.totalVfs) skip(`${t.pfKernelDriver} allows every VF the device has`);
      await refused(
        `sriov_numvfs ${t.driverVfLimit + 1}`,
        'ERANGE',
        setNumVfs(t, String(t.driverVfLimit + 1)),
      );
      same('sriov_numvfs after ERANGE', await read(t, t.pf, 'sriov_numvfs'), '0');
      same('VFs at the limit', (await enableVfs(t, t.driverVfLimit)).length, t.driverVfLimit);
    },
  },
  {
    name: 'the-driver-vf-limit-leaves-with-the-driver',
    expect:
      'sriov_totalvfs = totalVfs once pfKernelDriver is unbound and on vfio-pci, which enables all totalVfs VFs; back on pfKernelDriver it reads driverVfLimit again',
    async run(t) {
      await t.sysfs.unbind(t.pf);
      same('sriov_totalvfs unbound', await read(t, t.pf, 'sriov_totalvfs'), String(t.totalVfs));
      await pfOnVfioPci(t);
      same('sriov_totalvfs on vfio-pci', await read(t, t.pf, 'sriov_totalvfs'), String(t.totalVfs));
      same('VFs on vfio-pci', (await enableVfs(t, t.totalVfs)).length, t.totalVfs);
      await setNumVfs(t, '0');
      await t.sysfs.unbind(t.pf);
      await t.sysfs.writeAttribute(t.pf, 'driver_override', '');
      await t.sysfs.bind(t.pf, t.pfKernelDriver);
      same(
        `sriov_totalvfs back on ${t.pfKernelDriver}`,
        await read(t, t.pf, 'sriov_totalvfs'),
        String(t.driverVfLimit),
      );
    },
  },
  {
    name: 'zero-vfs-removes-them',
    expect: 'with 2 VFs, writing 0 removes the virtfn links and the VF devices (their physfn → ENOENT)',
    async run(t) {
      const vfs = await enableVfs(t, 2);
      await setNumVfs(t, '0');
      same('virtfns', await t.sysfs.virtfns(t.pf), []);
      for (const vf of vfs) {
        same(`${vf} exists`, await t.sysfs.exists(vf), false);
        await refused(`physfn of removed ${vf}`, 'ENOENT', t.sysfs.physfn(vf));
      }
    },
  },
  {
    name: 'a-pf-without-a-driver-cannot-change-its-vf-count',
    expect: 'PF unbound: writing 1 → ENOENT; writing 0 (the current count) succeeds',
    async run(t) {
      await t.sysfs.unbind(t.pf);
      same('driver after unbind', await t.sysfs.driver(t.pf), null);
      await refused('sriov_numvfs 1 without a driver', 'ENOENT', setNumVfs(t, '1'));
      await setNumVfs(t, '0');
    },
  },
  {
    name: 'vfs-of-a-kernel-pf-go-to-the-vf-driver',
    expect: 'autoprobe on: a new VF binds to vfKernelDriver; its driver_override reads "(null)"',
    async run(t) {
      const vfDriver = needVfDriver(t);
      const [vf] = await enableVfs(t, 1);
      if (vf === undefined) return fail('no VF after enabling one');
      same('VF driver', await t.sysfs.driver(vf), vfDriver);
      same('VF driver_override', await read(t, vf, 'driver_override'), '(null)');
    },
  },
  {
    name: 'autoprobe-off-leaves-vfs-unbound',
    expect:
      'sriov_drivers_autoprobe 0: a new VF has no driver; drivers_probe on it succeeds and binds nothing; bind to vfKernelDriver → ENODEV; writing "maybe" → EINVAL',
    async run(t) {
      await t.sysfs.writeAttribute(t.pf, 'sriov_drivers_autoprobe', '0');
      same('sriov_drivers_autoprobe', await read(t, t.pf, 'sriov_drivers_autoprobe'), '0');
      const [vf] = await enableVfs(t, 1);
      if (vf === undefined) return fail('no VF after enabling one');
      same('VF driver', await t.sysfs.driver(vf), null);
      await t.sysfs.probe(vf);
      same('VF driver after drivers_probe', await t.sysfs.driver(vf), null);
      if (t.vfKernelDriver !== null) {
        await refused(`bind VF to ${t.vfKernelDriver}`, 'ENODEV', t.sysfs.bind(vf, t.vfKernelDriver));
      }
      await refused(
        'sriov_drivers_autoprobe "maybe"',
        'EINVAL',
        t.sysfs.writeAttribute(t.pf, 'sriov_drivers_autoprobe', 'maybe'),
      );
    },
  },
  {
    name: 'vfio-pci-pf-captures-its-vfs',
    expect:
      'PF on vfio-pci: each new VF reads driver_override "vfio-pci" and is bound to vfio-pci; the kernel logs "Captured SR-IOV VF <vf> driver_override"',
    async run(t) {
      await pfOnVfioPci(t);
      const mark = await logMark(t);
      const vfs = await enableVfs(t, 2);
      for (const vf of vfs) {
        same(`driver_override of ${vf}`, await read(t, vf, 'driver_override'), VFIO_PCI);
        same(`driver of ${vf}`, await t.sysfs.driver(vf), VFIO_PCI);
        await logged(t, mark, `Captured SR-IOV VF ${vf} driver_override`);
      }
    },
  },
  {
    name: 'vfio-pci-vfs-bind-even-with-autoprobe-off',
    expect:
      'PF on vfio-pci, sriov_drivers_autoprobe 0: a new VF still binds to vfio-pci (a driver_override lets a VF probe)',
    async run(t) {
      await pfOnVfioPci(t);
      await t.sysfs.writeAttribute(t.pf, 'sriov_drivers_autoprobe', '0');
      const [vf] = await enableVfs(t, 1);
      if (vf === undefined) return fail('no VF after enabling one');
      same('VF driver', await t.sysfs.driver(vf), VFIO_PCI);
    },
  },
  {
    name: 'unbinding-a-vfio-pci-pf-removes-its-vfs',
    expect: 'PF on vfio-pci with 2 VFs: unbind → no virtfn links, the VFs are gone, sriov_numvfs "0"',
    async run(t) {
      await pfOnVfioPci(t);
      const vfs = await enableVfs(t, 2);
      await t.sysfs.unbind(t.pf);
      await expectVfsGone(t, vfs);
    },
  },
  {
    name: 'unbinding-a-kernel-pf-removes-its-vfs',
    expect:
      'PF on pfKernelDriver with 2 VFs: unbind → its remove() disables SR-IOV: no virtfn links, the VFs are gone',
    async run(t) {
      const vfs = await enableVfs(t, 2);
      await t.sysfs.unbind(t.pf);
      await expectVfsGone(t, vfs);
    },
  },
  {
    name: 'vfio-pci-refuses-a-pf-that-has-vfs',
    expect:
      'VFs left enabled by stubDriver after its unbind; with override vfio-pci: bind → EBUSY; drivers_probe succeeds but the PF stays unbound',
    async run(t) {
      if (t.stubDriver === null) skip('no stub driver (pci-pf-stub) is loaded');
      await t.sysfs.writeAttribute(t.pf, 'driver_override', t.stubDriver);
      await t.sysfs.unbind(t.pf);
      await t.sysfs.probe(t.pf);
      same('PF driver', await t.sysfs.driver(t.pf), t.stubDriver);
      const vfs = await enableVfs(t, 2);
      await t.sysfs.unbind(t.pf);
      same('virtfns after the stub driver left', await t.sysfs.virtfns(t.pf), vfs);
      await t.sysfs.writeAttribute(t.pf, 'driver_override', VFIO_PCI);
      await refused('bind the PF to vfio-pci', 'EBUSY', t.sysfs.bind(t.pf, VFIO_PCI));
      await t.sysfs.probe(t.pf);
      same('PF driver after drivers_probe', await t.sysfs.driver(t.pf), null);
    },
  },
  {
    name: 'binding-a-bound-device-is-ebusy',
    expect: 'PF on pfKernelDriver: bind to pfKernelDriver → EBUSY',
    async run(t) {
      await refused(
        `bind the PF to ${t.pfKernelDriver} again`,
        'EBUSY',
        t.sysfs.bind(t.pf, t.pfKernelDriver),
      );
    },
  },
  {
    name: 'binding-a-driver-that-does-not-match-is-enodev',
    expect:
      'PF unbound, no override: bind to vfio-pci → ENODEV (it matches by override only); bind to vfKernelDriver → ENODEV',
    async run(t) {
      await t.sysfs.unbind(t.pf);
      await refused('bind the PF to vfio-pci', 'ENODEV', t.sysfs.bind(t.pf, VFIO_PCI));
      if (t.vfKernelDriver !== null) {
        await refused(`bind the PF to ${t.vfKernelDriver}`, 'ENODEV', t.sysfs.bind(t.pf, t.vfKernelDriver));
      }
      same('driver', await t.sysfs.driver(t.pf), null);
    },
  },
  {
    name: 'driver-override-admits-only-the-named-driver',
    expect: 'override "vfio-pci", PF unbound: bind to pfKernelDriver → ENODEV; bind to vfio-pci works',
    async run(t) {
      await t.sysfs.writeAttribute(t.pf, 'driver_override', VFIO_PCI);
      await t.sysfs.unbind(t.pf);
      await refused(`bind the PF to ${t.pfKernelDriver}`, 'ENODEV', t.sysfs.bind(t.pf, t.pfKernelDriver));
      await t.sysfs.bind(t.pf, VFIO_PCI);
      same('driver', await t.sysfs.driver(t.pf), VFIO_PCI);
    },
  },
  {
    name: 'clearing-driver-override',
    expect: 'writing "vfio-pci" reads back "vfio-pci"; writing "" or "\\n" reads back "(null)"',
    async run(t) {
      for (const clear of ['', '\n']) {
        await t.sysfs.writeAttribute(t.pf, 'driver_override', VFIO_PCI);
        same('driver_override', await read(t, t.pf, 'driver_override'), VFIO_PCI);
        await t.sysfs.writeAttribute(t.pf, 'driver_override', clear);
        same(
          `driver_override after ${JSON.stringify(clear)}`,
          await read(t, t.pf, 'driver_override'),
          '(null)',
        );
      }
    },
  },
  {
    name: 'drivers-probe-without-a-match-succeeds',
    expect: 'PF unbound, override naming no loaded driver: drivers_probe succeeds and the PF stays unbound',
    async run(t) {
      await t.sysfs.writeAttribute(t.pf, 'driver_override', 'vfbroker-no-such-driver');
      await t.sysfs.unbind(t.pf);
      await t.sysfs.probe(t.pf);
      same('driver', await t.sysfs.driver(t.pf), null);
    },
  },
  {
    name: 'a-vf-of-a-vfio-pci-pf-can-be-given-to-another-driver',
    expect:
      'VF unbound from vfio-pci: bind to vfKernelDriver → ENODEV while its override is "vfio-pci"; once cleared, the bind works and the kernel logs "VF <vf> bound to driver <driver> while PF bound to driver vfio-pci"',
    async run(t) {
      const vfDriver = needVfDriver(t);
      await pfOnVfioPci(t);
      const [vf] = await enableVfs(t, 1);
      if (vf === undefined) return fail('no VF after enabling one');
      await t.sysfs.unbind(vf);
      await refused(
        `bind the VF to ${vfDriver} with override vfio-pci`,
        'ENODEV',
        t.sysfs.bind(vf, vfDriver),
      );
      await t.sysfs.writeAttribute(vf, 'driver_override', '');
      const mark = await logMark(t);
      await t.sysfs.bind(vf, vfDriver);
      same('VF driver', await t.sysfs.driver(vf), vfDriver);
      await logged(t, mark, `VF ${vf} bound to driver ${vfDriver} while PF bound to driver vfio-pci`);
    },
  },
  {
    name: 'vfs-get-iommu-groups-of-their-own',
    expect: "each VF is in an IOMMU group, not the PF's and not another VF's",
    async run(t) {
      const pfGroup = await t.sysfs.iommuGroup(t.pf);
      if (pfGroup === null) skip('the PF is in no IOMMU group (IOMMU off)');
      const groups = new Set<number>([pfGroup]);
      for (const vf of await enableVfs(t, 2)) {
        const group = await t.sysfs.iommuGroup(vf);
        if (group === null || groups.has(group))
          fail(`VF ${vf} is in group ${group ?? 'none'}, already taken or none`);
        groups.add(group);
      }
    },
  },
  {
    name: 'vfio-pci-module-parameters',
    expect:
      'vfio_pci enable_sriov "Y"; disable_idle_d3 "Y" or "N"; an unknown parameter or module reads as absent',
    async run(t) {
      same('enable_sriov', await t.sysfs.moduleParameter('vfio_pci', 'enable_sriov'), 'Y');
      matches(
        'disable_idle_d3',
        (await t.sysfs.moduleParameter('vfio_pci', 'disable_idle_d3')) ?? '(absent)',
        /^[YN]$/,
      );
      same(
        'unknown parameter',
        await t.sysfs.moduleParameter('vfio_pci', 'vfbroker_no_such_parameter'),
        null,
      );
      same('unknown module', await t.sysfs.moduleParameter('vfbroker_no_such_module', 'enable_sriov'), null);
    },
  },
  {
    name: 'reset-method-can-be-cleared-and-restored',
    expect: 'reset_method "" reads back ""; "vfbroker-bogus" → EINVAL; "default" reads back as before',
    async run(t) {
      const before = await read(t, t.pf, 'reset_method');
      await t.sysfs.writeAttribute(t.pf, 'reset_method', '');
      same('reset_method after ""', await read(t, t.pf, 'reset_method'), '');
      await refused(
        'reset_method "vfbroker-bogus"',
        'EINVAL',
        t.sysfs.writeAttribute(t.pf, 'reset_method', 'vfbroker-bogus'),
      );
      await t.sysfs.writeAttribute(t.pf, 'reset_method', 'default');
      same('reset_method after "default"', await read(t, t.pf, 'reset_method'), before);
    },
  },
  {
    name: 'an-unknown-device',
    expect: 'exists false; reading an attribute or a link → ENOENT; bind and drivers_probe → ENODEV',
    async run(t) {
      const ghost = formatPciAddress({ domain: 0xffff, bus: 0xff, slot: 0x1f, function: 7 });
      same('exists', await t.sysfs.exists(ghost), false);
      await refused('read vendor', 'ENOENT', t.sysfs.readAttribute(ghost, 'vendor'));
      await refused('read the driver link', 'ENOENT', t.sysfs.driver(ghost));
      await refused('bind', 'ENODEV', t.sysfs.bind(ghost, t.pfKernelDriver));
      await refused('drivers_probe', 'ENODEV', t.sysfs.probe(ghost));
    },
  },
  {
    name: 'names-are-checked-before-any-path',
    expect: 'driver "../x", module ".." and parameter "a/b" → INVALID_ARGUMENT, nothing touched',
    async run(t) {
      await invalidArgument('bind to driver "../x"', t.sysfs.bind(t.pf, '../x'));
      await invalidArgument('module ".."', t.sysfs.moduleParameter('..', 'enable_sriov'));
      await invalidArgument('parameter "a/b"', t.sysfs.moduleParameter('vfio_pci', 'a/b'));
      same('driver', await t.sysfs.driver(t.pf), t.pfKernelDriver);
    },
  },
  {
    name: 'drivers-are-listed',
    expect: 'listDrivers is sorted and includes pfKernelDriver and vfio-pci',
    async run(t) {
      const drivers = await t.sysfs.listDrivers();
      same('sorted', drivers, [...drivers].sort());
      for (const d of [t.pfKernelDriver, VFIO_PCI]) same(`${d} listed`, drivers.includes(d), true);
    },
  },
];

// ---------------------------------------------------------------------------------------------

class CaseFailed extends Error {}
class CaseSkipped extends Error {}

function fail(message: string): never {
  throw new CaseFailed(message);
}

function skip(reason: string): never {
  throw new CaseSkipped(reason);
}

function same(what: string, actual: unknown, expected: unknown): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${what}: expected ${e}, got ${a}`);
}

function matches(what: string, actual: string, pattern: RegExp): void {
  if (!pattern.test(actual)) fail(`${what}: expected ${String(pattern)}, got ${JSON.stringify(actual)}`);
}

/** The action must be refused with exactly this errno. */
async function refused(what: string, errno: string, action: Promise<unknown>): Promise<void> {
  try {
    await action;
  } catch (err) {
    const got = errnoOfRefusal(err);
    if (got === errno) return;
    fail(`${what}: expected ${errno}, got ${got ?? describeError(err)}`);
  }
  fail(`${what}: expected ${errno}, but it succeeded`);
}

async function invalidArgument(what: string, action: Promise<unknown>): Promise<void> {
  try {
    await action;
  } catch (err) {
    if (err instanceof VfbError && err.code === 'INVALID_ARGUMENT') return;
    fail(`${what}: expected INVALID_ARGUMENT, got ${describeError(err)}`);
  }
  fail(`${what}: expected INVALID_ARGUMENT, but it succeeded`);
}

function describeError(err: unknown): string {
  if (err instanceof VfbError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

function read(t: CaseTarget, addr: PciAddress, name: DeviceAttribute): Promise<string> {
  return t.sysfs.readAttribute(addr, name);
}

function setNumVfs(t: CaseTarget, value: string): Promise<void> {
  return t.sysfs.writeAttribute(t.pf, 'sriov_numvfs', value);
}

async function enableVfs(t: CaseTarget, n: number): Promise<PciAddress[]> {
  await setNumVfs(t, String(n));
  const vfs = await t.sysfs.virtfns(t.pf);
  if (vfs.length !== n) fail(`expected ${n} virtfn links after enabling ${n} VFs, found ${vfs.length}`);
  return vfs;
}

/** echo vfio-pci > driver_override; unbind; drivers_probe — as vfbroker's plugins do it. */
async function pfOnVfioPci(t: CaseTarget): Promise<void> {
  await t.sysfs.writeAttribute(t.pf, 'driver_override', VFIO_PCI);
  await t.sysfs.unbind(t.pf);
  await t.sysfs.probe(t.pf);
  same('PF driver after drivers_probe', await t.sysfs.driver(t.pf), VFIO_PCI);
}

async function expectVfsGone(t: CaseTarget, vfs: readonly PciAddress[]): Promise<void> {
  same('virtfns', await t.sysfs.virtfns(t.pf), []);
  same('sriov_numvfs', await read(t, t.pf, 'sriov_numvfs'), '0');
  for (const vf of vfs) same(`${vf} exists`, await t.sysfs.exists(vf), false);
}

function needVfDriver(t: CaseTarget): string {
  if (t.vfKernelDriver === null) skip('no VF driver is loaded');
  return t.vfKernelDriver;
}

/** Where the kernel log ends now: its length and its last line. */
interface LogMark {
  readonly length: number;
  readonly last: string | undefined;
}

/** The kernel log's lines, without empty ones (dmesg's output ends with a newline). */
async function kernelLog(t: CaseTarget): Promise<string[]> {
  return t.readKernelLog === null ? [] : (await t.readKernelLog()).filter((line) => line !== '');
}

/** Where the kernel log ends now, so a check looks only at lines logged after it. */
async function logMark(t: CaseTarget): Promise<LogMark> {
  const lines = await kernelLog(t);
  return { length: lines.length, last: lines.at(-1) };
}

/**
 * The lines logged after `mark`. The kernel's ring buffer drops its oldest lines when it is full,
 * so the count alone can point past new lines: the mark's last line (dmesg stamps each line with
 * its time) is looked for when it is not where the count says; gone altogether, every line counts.
 */
function linesAfter(lines: readonly string[], mark: LogMark): readonly string[] {
  if (mark.last === undefined || lines[mark.length - 1] === mark.last) return lines.slice(mark.length);
  return lines.slice(lines.lastIndexOf(mark.last) + 1);
}

async function logged(t: CaseTarget, mark: LogMark, text: string): Promise<void> {
  if (t.readKernelLog === null) return;
  const lines = linesAfter(await kernelLog(t), mark);
  if (!lines.some((line) => line.includes(text)))
    fail(`kernel log: no line with ${JSON.stringify(text)} after the action`);
}

/** VF n's address from the SR-IOV capability: routing ID = PF's (bus << 8 | devfn) + offset + stride × n. */
function routedVf(pf: PciAddress, offset: number, stride: number, n: number): PciAddress {
  const p = parsePciAddressParts(pf);
  const rid = p.bus * 256 + p.slot * 8 + p.function + offset + stride * n;
  return formatPciAddress({
    domain: p.domain,
    bus: Math.floor(rid / 256),
    slot: Math.floor(rid / 8) % 32,
    function: rid % 8,
  });
}
