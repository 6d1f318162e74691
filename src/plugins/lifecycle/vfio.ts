/**
 * vfio-pci must be loaded with SR-IOV enabled before a PF on it can have VFs (the kernel answers
 * ENOENT otherwise), and some devices need more of its parameters. The error says exactly how to
 * fix it now and how to keep it across reboots.
 */
import { VfbError } from '../../errors.js';
import type { PciAddress } from '../../pci/address.js';
import type { Sysfs } from '../../sysfs/sysfs.js';

export const VFIO_PCI = 'vfio-pci';

export interface VfioRequirement {
  /** A boolean parameter of vfio-pci that must be on, e.g. disable_idle_d3. */
  readonly parameter: string;
  readonly why: string;
}

/** The file `vfbroker install` writes; the same name here, in doctor and in the docs. */
export const MODPROBE_CONF = '/etc/modprobe.d/vfbroker-vfio-pci.conf';

export async function checkVfio(
  sysfs: Sysfs,
  pf: PciAddress,
  extra: readonly VfioRequirement[],
): Promise<void> {
  const wanted = [{ parameter: 'enable_sriov', why: 'VFs of a PF on vfio-pci need it' }, ...extra];
  const values = await Promise.all(wanted.map((r) => sysfs.moduleParameter('vfio_pci', r.parameter)));
  const settings = wanted.map((r) => `${r.parameter}=1`).join(' ');
  const persist = `add \`options vfio-pci ${settings}\` to ${MODPROBE_CONF} to keep it across reboots`;
  if (values.every((v) => v === null)) {
    throw new VfbError(
      'UNAVAILABLE',
      `vfio-pci is not loaded, PF ${pf} needs it: run \`modprobe vfio-pci ${settings}\` and ${persist}`,
      {
        hint: `modprobe vfio-pci ${settings}`,
      },
    );
  }
  const off = wanted.filter((_, i) => !isOn(values[i]));
  if (off.length === 0) return;
  const fix = off.map((r) => `\`echo Y > /sys/module/vfio_pci/parameters/${r.parameter}\``).join(' and ');
  const reasons = off.map((r) => `${r.parameter} is off (${r.why})`).join('; ');
  throw new VfbError(
    'UNAVAILABLE',
    `vfio-pci is not set up for PF ${pf}: ${reasons}; run ${fix} and ${persist}`,
    {
      hint: `echo Y > /sys/module/vfio_pci/parameters/${off[0]?.parameter ?? 'enable_sriov'}`,
    },
  );
}

function isOn(value: string | null | undefined): boolean {
  return value === 'Y' || value === '1';
}
