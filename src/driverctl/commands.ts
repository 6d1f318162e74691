/**
 * `vfbroker pf up --print-driverctl`: the commands that make a plan's bindings survive a reboot
 * through driverctl, as shell lines in the order they can be run (notes are `#` comments).
 *
 * - A PF that belongs on vfio-pci gets `driverctl set-override <pf> vfio-pci`: vfio-pci binds
 *   nothing by itself. set-override unbinds the device before it writes the override (even with
 *   --noprobe), and unbinding a PF from vfio-pci removes its VFs and waits for its PF driver to let
 *   go, so it goes between `vfbroker pf down` and `vfbroker pf up`. A PF a plugin keeps on a
 *   kernel driver gets none: that driver binds it by PCI ID.
 * - VFs of a PF on vfio-pci that stay on vfio-pci need none: vfio-pci writes driver_override on
 *   each VF of the PF it holds as the VF is created (vfio_pci_core.c vfio_pci_bus_notifier).
 * - Any other VF (opted in with vfDrivers, or a VF of a PF on a kernel driver) needs one: it would
 *   otherwise come up on vfio-pci (or its kernel driver) until vfbroker moves it, and driverctl's
 *   udev rule applies it each time the VF is created. set-override needs the VF to exist, so these
 *   come after the PF is up.
 *
 * Overrides driverctl already keeps are reported, not repeated.
 */
import type { PciAddress } from '../pci/address.js';
import { VFIO_PCI } from '../plugins/lifecycle/vfio.js';
import type { PfPlan, PlannedVf } from '../plugins/plan.js';
import type { Sysfs } from '../sysfs/sysfs.js';
import { readDriverctlOverrides, type DriverctlOverrides } from './overrides.js';
import { vfAddresses } from './vf-addresses.js';

/** The lines for one PF; `directory` holds driverctl's files (null: none to read). */
export async function driverctlCommands(
  plan: PfPlan,
  sysfs: Sysfs,
  directory: string | null,
): Promise<string[]> {
  const { pf, bindings } = plan;
  const vfs = await vfAddresses(sysfs, pf, bindings.vfs.length);
  const overrides: DriverctlOverrides =
    directory === null
      ? new Map()
      : await readDriverctlOverrides(directory, [pf, ...vfs.filter((a): a is PciAddress => a !== null)]);
  const kept = (address: PciAddress, driver: string): string | null => {
    const o = overrides.get(address);
    return o?.driver === driver ? o.file : null;
  };

  const lines = [
    `# PF ${pf} (${plan.deviceId}), plugin ${plan.plugin}: driverctl overrides for vfbroker's bindings`,
  ];
  const pfKept = kept(pf, bindings.pf);
  if (bindings.pf !== VFIO_PCI) {
    lines.push(`# PF ${pf}: stays on ${bindings.pf}, which binds it by PCI ID; no override`);
  } else if (pfKept !== null) {
    lines.push(`# PF ${pf}: kept on ${VFIO_PCI} by ${pfKept}`);
  } else {
    lines.push(
      '# set-override unbinds the PF first (even with --noprobe), which removes its VFs: bring the PF down around it',
      `vfbroker pf down ${pf}`,
      `driverctl set-override ${pf} ${VFIO_PCI}`,
      `vfbroker pf up ${pf}`,
    );
  }

  const captured = bindings.vfs.filter((vf) => vf.driver === VFIO_PCI && bindings.pf === VFIO_PCI);
  if (captured.length > 0) {
    lines.push(
      `# ${vfList(captured)}: no override; vfio-pci sets driver_override=${VFIO_PCI} on each VF of its PF as the VF is created`,
    );
  }
  const unpinned = bindings.vfs.filter((vf) => vf.driver === null);
  if (unpinned.length > 0)
    lines.push(`# ${vfList(unpinned)}: left on the driver the kernel gives them; no override`);

  const own = bindings.vfs.filter(
    (vf): vf is PlannedVf & { readonly driver: string } => vf.driver !== null && !captured.includes(vf),
  );
  if (own.length > 0) {
    lines.push(
      `# ${vfList(own)}: once the PF is up (set-override needs the VF to exist); driverctl then binds each VF whenever it is created`,
    );
  }
  for (const vf of own) {
    const address = vfs[vf.index];
    const file = address ? kept(address, vf.driver) : null;
    if (!address) lines.push(`# VF ${vf.index}: its routing ID does not fit a PCI address; no override`);
    else if (file !== null) lines.push(`# VF ${vf.index} (${address}): kept on ${vf.driver} by ${file}`);
    else lines.push(`driverctl set-override ${address} ${vf.driver}`);
  }
  return lines;
}

/** "VF 3", "VFs 0-2, 4-6". */
function vfList(vfs: readonly PlannedVf[]): string {
  const ranges: string[] = [];
  let start = vfs[0]?.index ?? 0;
  vfs.forEach((vf, i) => {
    const next = vfs[i + 1]?.index;
    if (next === vf.index + 1) return;
    ranges.push(start === vf.index ? `${start}` : `${start}-${vf.index}`);
    if (next !== undefined) start = next;
  });
  return `${vfs.length === 1 ? 'VF' : 'VFs'} ${ranges.join(', ')}`;
}
