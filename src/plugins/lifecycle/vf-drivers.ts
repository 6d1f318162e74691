/**
 * Which driver each VF belongs on. The plugin's layout names one for all of them; broker.yaml's
 * `vfDrivers` may name another for single VFs. That is the inverted model: the PF driven from
 * userspace on vfio-pci, one VF given to a host kernel driver (igbvf…). The kernel allows it and
 * only logs a warning, and no VF token applies to that VF, so it is never a default: each VF is
 * opted in by index, and plans, status and logs say what it costs.
 */
import { checkSysfsName } from '../../sysfs/names.js';
import type { PfConfig } from '../contract.js';
import type { PlannedVf, PlanStep } from '../plan.js';
import type { UnprotectedVf, VfStatus } from '../status.js';
import type { PfObservation } from './observe.js';
import type { PfLayout } from './spec.js';
import { VFIO_PCI } from './vfio.js';

/** VF 0 … count-1 with the driver each belongs on. Opt-ins at or above `count` do not apply. */
export function plannedVfs(layout: PfLayout, config: PfConfig, count: number): PlannedVf[] {
  const chosen = new Map<number, string>();
  // broker.yaml checked the names already; a plugin PfConfig may come from elsewhere.
  for (const c of config.vfDrivers ?? []) chosen.set(c.index, checkSysfsName('driver', c.driver));
  return Array.from({ length: count }, (_, index) => {
    const own = chosen.get(index);
    // Naming the layout's own driver opts nothing in.
    return own === undefined || own === layout.vfDriver
      ? { index, driver: layout.vfDriver, optedIn: false }
      : { index, driver: own, optedIn: true };
  });
}

/** The driver VF `index` belongs on; VFs beyond the planned ones (about to go) follow the layout. */
function wantedVfDriver(planned: readonly PlannedVf[], layout: PfLayout, index: number): string | null {
  return planned[index]?.driver ?? layout.vfDriver;
}

/**
 * bind-vfs for the VFs that go to the layout's driver, then a bind-vf for each opted-in VF not on
 * its own driver yet. `vfsCreated`: the plan creates the VFs, so none has an address or driver yet.
 */
export function vfBindSteps(
  planned: readonly PlannedVf[],
  layout: PfLayout,
  pf: PfObservation,
  vfsCreated: boolean,
): PlanStep[] {
  const steps: PlanStep[] = [];
  const common = layout.vfDriver;
  if (common !== null && planned.length > 0) {
    const strays = vfsCreated
      ? []
      : pf.vfs
          .filter((vf) => wantedVfDriver(planned, layout, vf.index) === common && vf.driver !== common)
          .map((vf) => vf.address);
    const count = vfsCreated ? planned.filter((v) => !v.optedIn).length : strays.length;
    if (count > 0) steps.push({ kind: 'bind-vfs', driver: common, count, addresses: strays });
  }
  for (const vf of planned) {
    if (!vf.optedIn || vf.driver === null) continue;
    const now = vfsCreated ? undefined : pf.vfs[vf.index];
    if (now?.driver === vf.driver) continue;
    steps.push({
      kind: 'bind-vf',
      index: vf.index,
      address: now?.address ?? null,
      driver: vf.driver,
      outsideTokenProtection: layout.pfDriver === VFIO_PCI,
    });
  }
  return steps;
}

/** Whether every VF is on the driver it belongs on, and the detail status shows for it. */
export function vfsBound(
  planned: readonly PlannedVf[],
  layout: PfLayout,
  vfs: readonly VfStatus[],
): { done: boolean; detail: string } {
  const strays = new Map<string, VfStatus[]>();
  for (const vf of vfs) {
    const wanted = wantedVfDriver(planned, layout, vf.index);
    if (wanted !== null && vf.driver !== wanted) strays.set(wanted, [...(strays.get(wanted) ?? []), vf]);
  }
  if (strays.size > 0) {
    const groups = [...strays].map(
      ([driver, list]) =>
        `not on ${driver}: ${list.map((vf) => `VF ${vf.index} ${vf.address} (${vf.driver ?? 'unbound'})`).join(', ')}`,
    );
    return { done: false, detail: groups.join('; ') };
  }
  const optedIn = vfs.filter((vf) => planned[vf.index]?.optedIn === true);
  const parts = [
    ...(layout.vfDriver === null ? [] : [`${vfs.length - optedIn.length} VFs on ${layout.vfDriver}`]),
    ...optedIn.map((vf) => `VF ${vf.index} on ${vf.driver ?? 'no driver'} (vfDrivers)`),
  ];
  return { done: true, detail: parts.join(', ') };
}

/** VFs of a PF on vfio-pci that a host driver holds, and whether broker.yaml asked for that. */
export function unprotectedVfs(planned: readonly PlannedVf[], vfs: readonly VfStatus[]): UnprotectedVf[] {
  return vfs.flatMap((vf) => {
    const driver = vf.driver;
    if (driver === null || driver === VFIO_PCI) return [];
    const plan = planned[vf.index];
    return [{ ...vf, driver, optedIn: plan?.optedIn === true && plan.driver === driver }];
  });
}
