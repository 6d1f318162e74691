import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VfbError } from '../../../src/errors.js';
import { parsePciAddress } from '../../../src/pci/address.js';
import { checkPf } from '../../../src/pfholder/preflight.js';
import { RealSysfs } from '../../../src/sysfs/real.js';

// A directory tree laid out like /sys for the few entries the holder looks at.
interface Dev {
  readonly addr: string;
  readonly driver?: string;
  readonly group?: number;
  readonly pf?: boolean;
}

const DEVICES: readonly Dev[] = [
  { addr: '0000:00:04.0', driver: 'vfio-pci', group: 2, pf: true },
  { addr: '0000:00:05.0', driver: 'igb', group: 3, pf: true },
  { addr: '0000:00:06.0', group: 6, pf: true },
  { addr: '0000:00:07.0', driver: 'vfio-pci', pf: true },
  { addr: '0000:00:14.0', driver: 'vfio-pci', group: 4 },
];

let root: string;
let sysfs: RealSysfs;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'vfb-preflight-'));
  for (const dev of DEVICES) {
    const dir = join(root, 'bus/pci/devices', dev.addr);
    await mkdir(dir, { recursive: true });
    if (dev.pf) await writeFile(join(dir, 'sriov_totalvfs'), '8\n');
    if (dev.driver) await symlink(`../../../../bus/pci/drivers/${dev.driver}`, join(dir, 'driver'));
    if (dev.group !== undefined)
      await symlink(`../../../../kernel/iommu_groups/${dev.group}`, join(dir, 'iommu_group'));
  }
  sysfs = new RealSysfs({ root });
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function refusal(
  addr: string,
): Promise<{ code: string; errno: unknown; message: string; hint: string }> {
  try {
    await checkPf(sysfs, parsePciAddress(addr));
  } catch (err) {
    assert.ok(err instanceof VfbError);
    return { code: err.code, errno: err.details['errno'], message: err.message, hint: err.hint };
  }
  assert.fail(`expected ${addr} to be refused`);
}

describe('checkPf', () => {
  it('accepts an SR-IOV PF on vfio-pci and gives its IOMMU group', async () => {
    assert.deepEqual(await checkPf(sysfs, parsePciAddress('0000:00:04.0')), {
      pf: '0000:00:04.0',
      iommuGroup: 2,
    });
  });

  it('refuses a device that does not exist', async () => {
    assert.deepEqual(await refusal('0000:00:1f.7'), {
      code: 'NOT_FOUND',
      errno: 'ENODEV',
      message: 'PCI device 0000:00:1f.7 does not exist',
      hint: 'check the address with lspci -D',
    });
  });

  it('refuses a device that is not an SR-IOV PF, such as a VF', async () => {
    const r = await refusal('0000:00:14.0');
    assert.deepEqual(
      [r.code, r.errno, r.message],
      ['INVALID_ARGUMENT', 'EINVAL', '0000:00:14.0 is not an SR-IOV PF (it has no sriov_totalvfs)'],
    );
  });

  it('refuses a PF on another driver or on none, naming it', async () => {
    assert.deepEqual(
      [(await refusal('0000:00:05.0')).message, (await refusal('0000:00:06.0')).message],
      [
        '0000:00:05.0 is bound to igb, not vfio-pci',
        '0000:00:06.0 is not bound to vfio-pci (it has no driver)',
      ],
    );
    assert.equal((await refusal('0000:00:05.0')).errno, 'EINVAL');
  });

  it('refuses a PF without an IOMMU group', async () => {
    const r = await refusal('0000:00:07.0');
    assert.deepEqual(
      [r.code, r.errno, r.message],
      ['NOT_FOUND', 'ENODEV', '0000:00:07.0 has no IOMMU group'],
    );
  });
});
