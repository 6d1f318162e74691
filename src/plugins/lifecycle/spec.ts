/**
 * What a plugin built on the shared life cycle (engine.ts) describes about its device; the engine
 * turns it into plan, apply, status and down. A plugin supplies only what differs between devices:
 * which driver the PF and VFs belong on, the VF limit, device-specific steps and its PF driver.
 */
import type { z } from 'zod';
import type { PciAddress } from '../../pci/address.js';
import type { PluginContext, PluginManifest } from '../contract.js';
import type { DriverStatus } from '../status.js';
import type { VfLimit } from './limits.js';
import type { VfioRequirement } from './vfio.js';

/** A PF entry resolved for its plugin: options validated, device ID read from sysfs. */
export interface PfTarget<O> {
  readonly address: PciAddress;
  readonly deviceId: string;
  readonly vfs: number;
  readonly options: O;
}

/** Where the PF and its VFs belong. */
export interface PfLayout {
  /** `vfio-pci` for a userspace PF driver, or the kernel driver that keeps the PF (mlx5_core). */
  readonly pfDriver: string;
  /** The driver every VF must be on, or null to leave VFs where the kernel puts them. */
  readonly vfDriver: string | null;
  /** The driver's limit when lower than sriov_totalvfs. */
  readonly vfLimit: VfLimit | null;
  /** vfio-pci parameters needed beyond enable_sriov (only read when pfDriver is vfio-pci). */
  readonly vfioParameters: readonly VfioRequirement[];
}

export interface StepCheck {
  readonly done: boolean;
  /** The state as status shows it. */
  readonly detail: string;
  /** What apply would change, for the plan. */
  readonly change: string;
}

/** A device-specific step (eswitch mode, per-VF settings). `check` must not change anything. */
export interface DeviceStep<O> {
  readonly name: string;
  /** before-vfs steps run before sriov_numvfs is set, after-vfs steps once the VFs exist. */
  readonly phase: 'before-vfs' | 'after-vfs';
  /** The step can only change while the PF has no VFs (the plan removes them first). */
  readonly needsNoVfs: boolean;
  check(ctx: PluginContext, target: PfTarget<O>): Promise<StepCheck>;
  /** Everything the step sets, for a plan where the VFs are created anew. */
  describe(target: PfTarget<O>): string;
  apply(ctx: PluginContext, target: PfTarget<O>): Promise<void>;
}

export type DriverState = Omit<DriverStatus, 'name'>;

/** The process that drives the PF from userspace and holds the token. */
export interface PfDriverSpec<O> {
  /** Whether it starts before the VFs exist (pf_bb_config, PF holder) or needs them (DPDK igb PF). */
  readonly starts: 'before-vfs' | 'after-vfs';
  describe(target: PfTarget<O>): string;
  state(ctx: PluginContext, target: PfTarget<O>): Promise<DriverState>;
  start(ctx: PluginContext, target: PfTarget<O>, token: string): Promise<void>;
  /** Idempotent: stopping a driver that does not run only cleans up its runtime files. */
  stop(ctx: PluginContext, target: PfTarget<O>): Promise<void>;
  /** Present for live rotation: replaces the token in the running driver. */
  setToken?(ctx: PluginContext, target: PfTarget<O>, token: string): Promise<void>;
  /** Stops every driver process this instance started. */
  close(): Promise<void>;
}

export interface LifecycleSpec<O> {
  readonly manifest: PluginManifest;
  /** Strict schema of the PF's `options` mapping. */
  readonly options: z.ZodType<O>;
  layout(target: PfTarget<O>): PfLayout;
  /** Read-only checks before planning; returns notes for the plan, throws for what cannot work. */
  preflight?(ctx: PluginContext, target: PfTarget<O>): Promise<readonly string[]>;
  deviceSteps?(target: PfTarget<O>): readonly DeviceStep<O>[];
  /** null when the PF needs no userspace driver (it stays on a kernel driver). */
  readonly driver: PfDriverSpec<O> | null;
}
