/**
 * The plugin contract: what a device plugin declares (its manifest) and what it implements (the PF
 * life cycle). Built-in plugins live in plugins/<name>/, external ones are modules named in
 * broker.yaml's `plugins.paths`; both export a PluginModule as their default export and are
 * loaded by registry.ts. See docs/decisions/0004-plugin-contract.md.
 *
 * The broker only ever talks to plugins through src/plugins/lifecycle/pf.ts (pfUp, pfDown, pfStatus,
 * rotateLive, restartDriver), which adds the checks every plugin would otherwise repeat.
 */
import type { Logger } from '../log.js';
import type { PciAddress } from '../pci/address.js';
import type { ProcessRunner } from '../process/runner.js';
import type { Sysfs } from '../sysfs/sysfs.js';
import type { PfPlan } from './plan.js';
import type { PfStatus } from './status.js';

/** The plugin API this vfbroker implements; manifests ask for a range such as "^1". */
export const PLUGIN_API_VERSION = { major: 1, minor: 0 } as const;

/**
 * How a new token reaches the PF driver (DESIGN.md §5): `live` replaces it in the running driver,
 * `drain` restarts the driver once no guest holds a VF, `none` means the PF needs no token.
 */
export type RotationMode = 'live' | 'drain' | 'none';

export interface PluginManifest {
  /** Lower-case, `[a-z][a-z0-9-]*`; what `plugin:` in broker.yaml names. */
  readonly name: string;
  /** Range of plugin API versions the plugin works with: "^1" or "^1.0". */
  readonly apiVersion: string;
  /** PCI `vendor:device` IDs (lower-case hex) of the PFs it handles; empty for fallback-only plugins. */
  readonly ids: readonly string[];
  /** False when VFs of its PFs open without a token (the PF stays on a kernel driver). */
  readonly needsToken: boolean;
  readonly rotation: RotationMode;
  /** One line for `vfbroker doctor` and the docs. */
  readonly description: string;
}

/** A VF that broker.yaml's `vfDrivers` puts on a driver of its own choosing (an explicit opt-in). */
export interface VfDriverChoice {
  readonly index: number;
  readonly driver: string;
}

/** One entry of broker.yaml's `pfs` list, as plugins see it. */
export interface PfConfig {
  readonly address: PciAddress;
  readonly plugin?: string | undefined;
  readonly vfs: number;
  /** Device-specific settings; each plugin validates them with its own strict schema. */
  readonly options?: Readonly<Record<string, unknown>> | undefined;
  /**
   * VFs bound to another driver than the plugin's layout says, by index; indexes at or above `vfs`
   * are ignored (SetNumVfs may lower the count below an opted-in VF). The shared life cycle
   * (lifecycle/engine.ts) carries them out.
   */
  readonly vfDrivers?: readonly VfDriverChoice[] | undefined;
}

/** Everything a plugin may touch. No globals: the same plugin runs on the simulator and on /sys. */
export interface PluginContext {
  readonly sysfs: Sysfs;
  readonly runner: ProcessRunner;
  readonly logger: Logger;
  /** /run/vfbroker: where 0600 files for PF drivers go. */
  readonly runtimeDirectory: string;
}

export interface DownOptions {
  /** Also give the PF back to the host: clear driver_override, unbind, let the kernel reprobe. */
  readonly release: boolean;
}

export interface Plugin {
  readonly manifest: PluginManifest;
  /** What `apply` would change. Reads sysfs and runs read-only queries; changes nothing. */
  plan(ctx: PluginContext, pf: PfConfig): Promise<PfPlan>;
  /** Carries out a plan. Every step re-checks the state first, so applying twice changes nothing. */
  apply(ctx: PluginContext, plan: PfPlan, token: string | null): Promise<void>;
  /** Which life-cycle steps are done; never throws because the PF is half set up. */
  status(ctx: PluginContext, pf: PfConfig): Promise<PfStatus>;
  /** Stops the PF driver and removes the VFs (idempotent). */
  down(ctx: PluginContext, pf: PfConfig, options: DownOptions): Promise<void>;
  /** Live rotation: hands a new token to the running PF driver (rotation `live` only). */
  setToken?(ctx: PluginContext, pf: PfConfig, token: string): Promise<void>;
  /** Drain rotation: restarts the PF driver with a new token while no VF is open (rotation `drain`). */
  restartDriver?(ctx: PluginContext, pf: PfConfig, token: string): Promise<void>;
  /** Stops every process this instance supervises (broker shutdown). */
  close(): Promise<void>;
}

/** The default export of a plugin module. `create` is called once per registry. */
export interface PluginModule {
  readonly manifest: PluginManifest;
  create(): Plugin;
}
