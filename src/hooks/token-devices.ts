/**
 * Which of a guest's PCI devices involve a VF token: a VF (it has a `physfn` link) whose PF is
 * bound to vfio-pci. Everything else — a GPU, a NIC's PF, a ConnectX-5 VF whose PF stays on
 * mlx5_core — opens without a token, so a guest made only of those never depends on the broker.
 * The hook answers this from sysfs itself, before any D-Bus call.
 */
import type { DomainInfo, PciDeviceKind } from '../libvirt/domain-xml.js';
import type { PciAddress } from '../pci/address.js';
import type { Sysfs } from '../sysfs/sysfs.js';
import type { HookLogger } from './hook-logger.js';

/** The sysfs reads the hook makes. */
export type HostPci = Pick<Sysfs, 'exists' | 'physfn' | 'driver'>;

export const VFIO_PCI = 'vfio-pci';

export interface TokenDevice {
  readonly address: PciAddress;
  readonly kind: PciDeviceKind;
  /** The vf-token the definition presents for this device's alias, null when none. */
  readonly presentedToken: string | null;
}

/**
 * The token-relevant devices among those with a known address. A device whose sysfs entries cannot
 * be read counts as token-relevant, so the broker (fail closed) rather than a guess decides; one
 * that does not exist is left to libvirt, which refuses to start with it anyway.
 */
export async function tokenDevices(
  info: DomainInfo,
  sysfs: HostPci,
  logger: HookLogger,
): Promise<TokenDevice[]> {
  const pfDrivers = new Map<PciAddress, Promise<string | null>>();
  const out: TokenDevice[] = [];
  for (const device of info.pciDevices) {
    if (device.address === null) continue;
    const address = device.address;
    let relevant: boolean;
    try {
      relevant = await needsToken(address, sysfs, pfDrivers);
    } catch (err) {
      logger.debug(
        { vf: address, code: (err as { code?: unknown }).code ?? 'unknown' },
        'cannot tell from sysfs whether the device needs a VF token; asking the broker',
      );
      relevant = true;
    }
    if (!relevant) continue;
    const presentedToken = device.alias === null ? null : (info.vfTokens.get(device.alias) ?? null);
    out.push({ address, kind: device.kind, presentedToken });
  }
  return out;
}

async function needsToken(
  address: PciAddress,
  sysfs: HostPci,
  pfDrivers: Map<PciAddress, Promise<string | null>>,
): Promise<boolean> {
  if (!(await sysfs.exists(address))) return false;
  const pf = await sysfs.physfn(address);
  if (pf === null) return false;
  let driver = pfDrivers.get(pf);
  if (driver === undefined) {
    driver = sysfs.driver(pf);
    pfDrivers.set(pf, driver);
  }
  return (await driver) === VFIO_PCI;
}
