/**
 * A plan says what bringing a PF up would change, before anything changes: `vfbroker pf up
 * --dry-run` prints it, the broker reads `drain` to decide whether guests must stop first, and
 * tests compare it as data. Steps are listed in the order `apply` carries them out.
 */
import type { PciAddress } from '../pci/address.js';
import type { PfConfig } from './contract.js';

export type PlanStep =
  /** The running PF driver has to go (the PF is rebound, or its VFs change under it). */
  | { readonly kind: 'stop-driver'; readonly driver: string; readonly reason: string }
  /** sriov_numvfs n → 0, because something below needs the PF without VFs. */
  | { readonly kind: 'remove-vfs'; readonly count: number; readonly reason: string }
  /** The PF moves to another driver (driver_override + drivers_probe). */
  | { readonly kind: 'bind-pf'; readonly from: string | null; readonly to: string }
  /** A device-specific change (eswitch mode, per-VF settings…), described by its plugin. */
  | { readonly kind: 'device'; readonly name: string; readonly change: string }
  /** sriov_numvfs 0 → n. */
  | { readonly kind: 'enable-vfs'; readonly count: number }
  /** VFs move to a driver; `addresses` is empty when the VFs are created by an earlier step. */
  | {
      readonly kind: 'bind-vfs';
      readonly driver: string;
      readonly count: number;
      readonly addresses: readonly PciAddress[];
    }
  /** One VF moves to the driver broker.yaml's `vfDrivers` names for it; address null: not created yet. */
  | {
      readonly kind: 'bind-vf';
      readonly index: number;
      readonly address: PciAddress | null;
      readonly driver: string;
      /** True when the PF is on vfio-pci: the VF is then used without a VF token. */
      readonly outsideTokenProtection: boolean;
    }
  | { readonly kind: 'start-driver'; readonly driver: string };

/** Where a VF ends up once the plan is applied. */
export interface PlannedVf {
  readonly index: number;
  /** null: left on whatever driver the kernel gives it. */
  readonly driver: string | null;
  /** Put there by broker.yaml's `vfDrivers` rather than by the plugin. */
  readonly optedIn: boolean;
}

/** The drivers the plan leaves the PF and its VFs on (what driverctl overrides are checked against). */
export interface PlannedBindings {
  readonly pf: string;
  /** VF 0 first, one per VF wanted. */
  readonly vfs: readonly PlannedVf[];
}

export interface PfPlan {
  readonly plugin: string;
  readonly pf: PciAddress;
  /** `vendor:device` as read from sysfs. */
  readonly deviceId: string;
  /** The PF entry the plan was made from; apply works from it, so a plan carries no secret. */
  readonly config: PfConfig;
  readonly needsToken: boolean;
  readonly steps: readonly PlanStep[];
  readonly bindings: PlannedBindings;
  /** Whether guests holding VFs of this PF must be stopped first, and why. */
  readonly drain: { readonly required: boolean; readonly reason: string | null };
  /** Things the operator should know that change nothing (a check that could not run…). */
  readonly notes: readonly string[];
}

export function describeStep(step: PlanStep): string {
  switch (step.kind) {
    case 'stop-driver':
      return `stop the PF driver ${step.driver} (${step.reason})`;
    case 'remove-vfs':
      return `remove the ${step.count} existing VFs: sriov_numvfs ${step.count} → 0 (${step.reason})`;
    case 'bind-pf':
      return `bind the PF to ${step.to} (now ${step.from ?? 'unbound'})`;
    case 'device':
      return `${step.name}: ${step.change}`;
    case 'enable-vfs':
      return `enable ${step.count} VFs: sriov_numvfs 0 → ${step.count}`;
    case 'bind-vfs':
      return step.addresses.length > 0
        ? `bind ${step.count} VFs to ${step.driver}: ${step.addresses.join(', ')}`
        : `bind the ${step.count} new VFs to ${step.driver}`;
    case 'bind-vf':
      return `bind VF ${step.index}${step.address === null ? '' : ` (${step.address})`} to ${step.driver}, as vfDrivers in broker.yaml asks${step.outsideTokenProtection ? ': it is then used outside VF-token protection' : ''}`;
    case 'start-driver':
      return `start the PF driver ${step.driver}`;
  }
}

/** The plan as `--dry-run` prints it: a header line, one numbered line per step, then notes. */
export function renderPlan(plan: PfPlan): string {
  const head = `PF ${plan.pf} (${plan.deviceId}), plugin ${plan.plugin}, ${plan.config.vfs} VFs`;
  const lines =
    plan.steps.length === 0
      ? [`${head}: up to date, nothing to change`]
      : [
          `${head}: ${plan.steps.length} ${plan.steps.length === 1 ? 'step' : 'steps'}`,
          ...plan.steps.map((s, i) => `  ${i + 1}. ${describeStep(s)}`),
        ];
  if (plan.drain.required)
    lines.push(`  guests using VFs of this PF must be stopped first: ${plan.drain.reason ?? ''}`);
  lines.push(...plan.notes.map((n) => `  note: ${n}`));
  return lines.join('\n');
}
