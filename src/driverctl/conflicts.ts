/**
 * The check `pf up` runs on its plan: a persistent driverctl override that puts the PF or one of
 * its VFs on another driver than the plan does is an error. Left alone, driverctl's udev rule would
 * undo vfbroker's binding at every boot and every time a VF is created, and the two would race.
 * The error names both sides (the driverctl file and the broker.yaml entry, with its line) and
 * both ways out.
 */
import type { PfConfig as PfEntry } from '../config/broker-config.js';
import type { SourceLocation } from '../config/config-error.js';
import { VfbError } from '../errors.js';
import type { PciAddress } from '../pci/address.js';
import type { PfPlan } from '../plugins/plan.js';
import { isSysfsName } from '../sysfs/names.js';
import type { Sysfs } from '../sysfs/sysfs.js';
import { overrideTarget, readDriverctlOverrides, type DriverctlOverride } from './overrides.js';
import { vfAddresses } from './vf-addresses.js';

interface Conflict {
  readonly override: DriverctlOverride;
  /** "PF 0000:04:00.0", "VF 1 (0000:04:10.2) of PF 0000:04:00.0". */
  readonly device: string;
  /** When driverctl applies it: "at boot", "each time the VF is created". */
  readonly when: string;
  readonly wanted: string;
  readonly where: SourceLocation;
  /** The other way out, in broker.yaml. */
  readonly configFix: string;
}

/**
 * Throws CONFIG_INVALID for the first conflict between `plan` and the overrides driverctl keeps in
 * `directory` (null: none to read). `entry` is the broker.yaml entry the plan was made from.
 */
export async function checkDriverctl(
  plan: PfPlan,
  entry: PfEntry,
  sysfs: Sysfs,
  directory: string | null,
): Promise<void> {
  if (directory === null) return;
  const vfs = await vfAddresses(sysfs, plan.pf, plan.bindings.vfs.length);
  const known = vfs.filter((a): a is PciAddress => a !== null);
  const overrides = await readDriverctlOverrides(directory, [plan.pf, ...known]);
  const conflicts: Conflict[] = [];

  const pfOverride = overrides.get(plan.pf);
  if (pfOverride && pfOverride.driver !== plan.bindings.pf) {
    conflicts.push({
      override: pfOverride,
      device: `PF ${plan.pf}`,
      when: 'at boot',
      wanted: `${plan.bindings.pf} (plugin ${plan.plugin})`,
      where: entry.location,
      configFix: 'change that entry',
    });
  }
  for (const vf of plan.bindings.vfs) {
    const address = vfs[vf.index];
    const override = address ? overrides.get(address) : undefined;
    if (!address || !override || vf.driver === null || override.driver === vf.driver) continue;
    const optIn = entry.vfDrivers?.find((c) => c.index === vf.index);
    const usable = isSysfsName(override.driver) && override.driver !== 'none';
    conflicts.push({
      override,
      device: `VF ${vf.index} (${address}) of PF ${plan.pf}`,
      when: 'each time the VF is created',
      wanted: vf.driver,
      where: vf.optedIn && optIn ? optIn.location : entry.location,
      configFix: vf.optedIn
        ? `change vfDrivers there`
        : usable
          ? `opt the VF in with \`vfDrivers: { ${vf.index}: ${override.driver} }\` there`
          : 'change that entry',
    });
  }

  const [first] = conflicts;
  if (first) throw await conflictError(first, conflicts.length - 1, sysfs);
}

async function conflictError(c: Conflict, more: number, sysfs: Sysfs): Promise<VfbError> {
  const { override, where } = c;
  // driverctl refuses to unset the override of a device that does not exist (a VF not created yet).
  const fix = (await sysfs.exists(override.address))
    ? `driverctl unset-override ${override.address}`
    : `rm ${override.file}`;
  const at = `${where.file}:${where.line}:${where.column}`;
  const also = more === 0 ? '' : ` (and ${more} more driverctl conflict${more === 1 ? '' : 's'})`;
  return new VfbError(
    'CONFIG_INVALID',
    `driverctl's ${override.file} puts ${c.device} on ${overrideTarget(override.driver)} ${c.when}, but ${at} wants it on ${c.wanted}: run \`${fix}\`, or ${c.configFix}${also}`,
    {
      hint: `\`${fix}\` removes driverctl's override; then run \`vfbroker pf up\` again`,
      details: {
        file: override.file,
        address: override.address,
        config: at,
        wanted: c.wanted,
        conflicts: more + 1,
      },
    },
  );
}
