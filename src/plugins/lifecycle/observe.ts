/**
 * One read of everything the life cycle needs to know about a PF. Plans and status reports are
 * computed from this snapshot, so both describe the same state.
 */
import { VfbError, isVfbError, type KernelError } from '../../errors.js';
import type { PciAddress } from '../../pci/address.js';
import type { Sysfs } from '../../sysfs/sysfs.js';
import type { VfStatus } from '../status.js';

export interface PfObservation {
  readonly address: PciAddress;
  readonly deviceId: string;
  readonly driver: string | null;
  /** null when the PF has no SR-IOV capability (no sriov_totalvfs). */
  readonly totalVfs: number | null;
  readonly numVfs: number;
  /** The VFs that exist, from the virtfnN links (never computed from offset and stride). */
  readonly vfs: readonly VfStatus[];
}

export async function observePf(sysfs: Sysfs, address: PciAddress): Promise<PfObservation> {
  const deviceId = await readDeviceId(sysfs, address);
  const totalVfs = await readOptionalNumber(sysfs, address, 'sriov_totalvfs');
  const numVfs = totalVfs === null ? 0 : ((await readOptionalNumber(sysfs, address, 'sriov_numvfs')) ?? 0);
  const addresses = totalVfs === null ? [] : await sysfs.virtfns(address);
  const vfs = await Promise.all(
    addresses.map(async (vf, index) => ({ index, address: vf, driver: await sysfs.driver(vf) })),
  );
  return { address, deviceId, driver: await sysfs.driver(address), totalVfs, numVfs, vfs };
}

/** `vendor:device` in lower-case hex without 0x, as manifests list them. NOT_FOUND if the PF is absent. */
export async function readDeviceId(sysfs: Sysfs, address: PciAddress): Promise<string> {
  if (!(await sysfs.exists(address))) {
    throw new VfbError('NOT_FOUND', `PF ${address} does not exist (${sysfs.description})`, {
      hint: 'check the address in /etc/vfbroker/broker.yaml against `lspci -D`',
    });
  }
  const [vendor, device] = await Promise.all([
    sysfs.readAttribute(address, 'vendor'),
    sysfs.readAttribute(address, 'device'),
  ]);
  return `${hex4(vendor)}:${hex4(device)}`;
}

function hex4(value: string): string {
  return value.trim().toLowerCase().replace(/^0x/, '').padStart(4, '0');
}

async function readOptionalNumber(
  sysfs: Sysfs,
  address: PciAddress,
  name: 'sriov_totalvfs' | 'sriov_numvfs',
): Promise<number | null> {
  try {
    const n = Number.parseInt(await sysfs.readAttribute(address, name), 10);
    return Number.isNaN(n) ? null : n;
  } catch (err) {
    if (isVfbError(err, 'KERNEL_REFUSED') && (err as KernelError).errno === 'ENOENT') return null;
    throw err;
  }
}
