/**
 * What `vfbroker pf status` reports for one PF: each life-cycle step and whether it is done, so a PF
 * left half set up by a failure says exactly where it stopped (`up` and `down` both recover from
 * any of these states).
 */
import type { PciAddress } from '../pci/address.js';
import type { ProcessExit } from '../process/runner.js';

export type PfLifecycleState = 'up' | 'down' | 'degraded';

export interface StepStatus {
  /** `pf-bound`, `vfs-enabled`, `vfs-bound`, `driver-running`, or a device step's name. */
  readonly step: string;
  readonly done: boolean;
  readonly detail: string;
}

export interface DriverStatus {
  readonly name: string;
  readonly running: boolean;
  readonly pid: number | null;
  readonly detail: string;
  /** How the driver last ended when it was not asked to (a crash), null otherwise. */
  readonly lastExit: (ProcessExit & { readonly at: string }) | null;
}

export interface VfStatus {
  readonly index: number;
  readonly address: PciAddress;
  readonly driver: string | null;
}

/**
 * A VF of a PF on vfio-pci that a host driver holds. The kernel checks the VF token only when a VF
 * is opened through VFIO, so such a VF is used without one; vfio-pci logs "VF … bound to driver …
 * while PF bound to driver vfio-pci" and nothing stops it.
 */
export interface UnprotectedVf extends VfStatus {
  readonly driver: string;
  /** Asked for by broker.yaml's `vfDrivers`; false: nobody asked vfbroker for it. */
  readonly optedIn: boolean;
}

export interface PfStatus {
  readonly plugin: string;
  readonly pf: PciAddress;
  /** null when the PF is not present. */
  readonly deviceId: string | null;
  /** up: every step done; down: no VFs and no PF driver running; degraded: anything between. */
  readonly state: PfLifecycleState;
  readonly pfDriver: string | null;
  readonly wantedVfs: number;
  readonly vfs: readonly VfStatus[];
  readonly steps: readonly StepStatus[];
  /** VFs outside VF-token protection; empty unless the PF is on vfio-pci. */
  readonly outsideTokenProtection: readonly UnprotectedVf[];
  /** null for plugins whose PF needs no driver process (mlx5). */
  readonly driver: DriverStatus | null;
}

export function renderStatus(status: PfStatus): string {
  const lines = [
    `PF ${status.pf} (${status.deviceId ?? 'not present'}), plugin ${status.plugin}: ${status.state}`,
    ...status.steps.map((s) => `  [${s.done ? 'x' : ' '}] ${s.step}: ${s.detail}`),
    ...status.outsideTokenProtection.map((vf) => `  ! ${describeUnprotectedVf(vf)}`),
  ];
  if (status.driver?.lastExit) {
    const e = status.driver.lastExit;
    lines.push(
      `  last driver exit: ${e.code === null ? `signal ${e.signal ?? '?'}` : `status ${e.code}`} at ${e.at}`,
    );
  }
  return lines.join('\n');
}

/** One line about a VF outside VF-token protection, for status, logs and the audit log. */
export function describeUnprotectedVf(vf: UnprotectedVf): string {
  const why = vf.optedIn ? 'as vfDrivers in broker.yaml asks' : 'which broker.yaml does not ask for';
  return `VF ${vf.index} (${vf.address}) is on ${vf.driver}, ${why}: outside VF-token protection`;
}
