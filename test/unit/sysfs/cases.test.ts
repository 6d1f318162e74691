import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePciAddress } from '../../../src/pci/address.js';
import { SysfsSimulator } from '../../../src/sysfs/simulator.js';
import type { Sysfs } from '../../../src/sysfs/sysfs.js';
import {
  SYSFS_CASES,
  restorePf,
  runSysfsCases,
  type CaseTarget,
  type SysfsCase,
} from '../../cases/sysfs-cases.js';
import { repoPath } from '../../support/repo.js';

const PF = parsePciAddress('0000:00:04.0');

/** The simulator of the real-kernel guest, described as test/kernel describes that guest. */
async function guestTarget(): Promise<{ sim: SysfsSimulator; target: CaseTarget }> {
  const sim = await SysfsSimulator.fromFixture(repoPath('test/fixtures/hosts/qemu-igb-guest.yaml'));
  const target: CaseTarget = {
    sysfs: sim,
    pf: PF,
    pfKernelDriver: 'igb',
    vfKernelDriver: 'igbvf',
    stubDriver: 'pci-pf-stub',
    totalVfs: 8,
    driverVfLimit: 7,
    readKernelLog: () => sim.readKernelLog(),
    reset: () => sim.reset(),
  };
  return { sim, target };
}

function caseNamed(name: string): SysfsCase {
  const c = SYSFS_CASES.find((x) => x.name === name);
  assert.ok(c, name);
  return c;
}

describe('the sysfs case table against the simulated real-kernel guest', async () => {
  const { target } = await guestTarget();
  for (const c of SYSFS_CASES) {
    it(c.name, async () => {
      const [result] = await runSysfsCases(target, [c]);
      assert.deepEqual(result, { name: c.name, ok: true, skipped: false, detail: result?.detail });
      assert.equal(result.detail, c.expect.replace(/\s+/g, ' '));
    });
  }

  it('has unique case names', () => {
    assert.equal(new Set(SYSFS_CASES.map((c) => c.name)).size, SYSFS_CASES.length);
  });
});

describe('runSysfsCases', () => {
  it('fails a case whose answer differs from the kernel, saying what was expected and got', async () => {
    const { sim, target } = await guestTarget();
    // A sysfs that swallows refused writes, as a simulator with the EBUSY rule missing would behave.
    const lenient: Sysfs = new Proxy(sim, {
      get(obj, prop) {
        if (prop === 'writeAttribute') {
          return (...args: Parameters<Sysfs['writeAttribute']>) =>
            obj.writeAttribute(...args).catch(() => undefined);
        }
        const value: unknown = Reflect.get(obj, prop, obj);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(obj) : value;
      },
    });
    const [result] = await runSysfsCases({ ...target, sysfs: lenient }, [
      caseNamed('changing-a-nonzero-vf-count-is-ebusy'),
    ]);
    assert.deepEqual(result, {
      name: 'changing-a-nonzero-vf-count-is-ebusy',
      ok: false,
      skipped: false,
      detail: 'sriov_numvfs 2 → 3: expected EBUSY, but it succeeded',
    });
  });

  it('skips a case the target cannot run, and says why', async () => {
    const { target } = await guestTarget();
    const results = await runSysfsCases({ ...target, vfKernelDriver: null, driverVfLimit: 8 }, [
      caseNamed('vfs-of-a-kernel-pf-go-to-the-vf-driver'),
      caseNamed('the-driver-vf-limit-is-erange'),
    ]);
    assert.deepEqual(
      results.map((r) => [r.ok, r.skipped, r.detail]),
      [
        [true, true, 'skipped: no VF driver is loaded'],
        [true, true, 'skipped: igb allows every VF the device has'],
      ],
    );
  });

  it('fails a case whose reset fails, without running it', async () => {
    const { target } = await guestTarget();
    const reset = () => Promise.reject(new Error('PF is gone'));
    const [result] = await runSysfsCases({ ...target, reset }, [
      caseNamed('binding-a-bound-device-is-ebusy'),
    ]);
    assert.equal(result?.ok, false);
    assert.equal(result.detail, 'reset before the case failed: Error: PF is gone');
  });

  it('reports an unexpected error as a failure with its code and message', async () => {
    const { target } = await guestTarget();
    const [result] = await runSysfsCases({ ...target, pf: parsePciAddress('0000:00:00.0') }, [
      caseNamed('changing-a-nonzero-vf-count-is-ebusy'),
    ]);
    assert.equal(result?.ok, false);
    assert.match(
      result.detail,
      /^unexpected error: KERNEL_REFUSED: cannot set sriov_numvfs of 0000:00:00\.0 to 2 \(ENOENT on /,
    );
  });
});

describe('restorePf', () => {
  it('brings a PF back from any state the cases leave to the state the guest starts in', async () => {
    const { sim, target } = await guestTarget();
    const start = sim.snapshot().devices;
    // The worst case: VFs that outlived pci-pf-stub, the PF unbound, overrides and settings changed.
    await sim.writeAttribute(PF, 'driver_override', 'pci-pf-stub');
    await sim.unbind(PF);
    await sim.probe(PF);
    await sim.writeAttribute(PF, 'sriov_numvfs', '3');
    await sim.unbind(PF);
    await sim.writeAttribute(PF, 'sriov_drivers_autoprobe', '0');
    await sim.writeAttribute(PF, 'reset_method', '');
    assert.equal((await sim.virtfns(PF)).length, 3);

    await restorePf(target);
    assert.deepEqual(sim.snapshot().devices, start);
  });

  it('says so when VFs without a driver cannot be removed', async () => {
    const { sim, target } = await guestTarget();
    await sim.writeAttribute(PF, 'driver_override', 'pci-pf-stub');
    await sim.unbind(PF);
    await sim.probe(PF);
    await sim.writeAttribute(PF, 'sriov_numvfs', '1');
    await sim.unbind(PF);
    await assert.rejects(restorePf({ ...target, stubDriver: null }), {
      message: '0000:00:04.0 has VFs but no driver, and no stub driver is loaded to remove them',
    });
  });
});
