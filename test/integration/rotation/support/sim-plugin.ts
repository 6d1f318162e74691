/**
 * Device plugins whose PF driver is a handle on the simulated kernel's VFIO (SimulatedKernel.vfio),
 * so which token a PF holds is the kernel model's answer, not the test's bookkeeping: a VF opens
 * with that token and no other. Built on the shared life cycle (lifecyclePlugin), like the real
 * plugins, in two variants: `live` sets the token on the open PF (vfbroker's PF holder), `drain`
 * closes and reopens the PF (pf_bb_config, which opens without a token and cannot while VFs are open).
 *
 * SimPfDrivers stands for the PF driver processes: they outlive a broker crash, so a test drops the
 * broker and keeps this. `acceptOnly` makes a driver refuse every token but one (a new token it
 * rejects); `gate` runs before and after each token change (crash tests stop the world there).
 */
import { z } from 'zod';
import { KernelError, VfbError } from '../../../../src/errors.js';
import type { PciAddress } from '../../../../src/pci/address.js';
import type { Plugin, PluginManifest } from '../../../../src/plugins/contract.js';
import { lifecyclePlugin } from '../../../../src/plugins/lifecycle/engine.js';
import type { PfDriverSpec } from '../../../../src/plugins/lifecycle/spec.js';
import { VFIO_PCI } from '../../../../src/plugins/lifecycle/vfio.js';
import type { SimulatedKernel } from '../../../../src/sysfs/simulator.js';

export type Gate = (point: string) => Promise<void>;

export class SimPfDrivers {
  readonly kernel: SimulatedKernel;
  gate: Gate = () => Promise.resolve();
  readonly #handles = new Map<PciAddress, number>();
  readonly #acceptOnly = new Map<PciAddress, string>();

  constructor(kernel: SimulatedKernel) {
    this.kernel = kernel;
  }

  /** From now on this PF's driver refuses every token but `token` (null: accepts any again). */
  acceptOnly(pf: PciAddress, token: string | null): void {
    if (token === null) this.#acceptOnly.delete(pf);
    else this.#acceptOnly.set(pf, token);
  }

  running(pf: PciAddress): boolean {
    return this.#handles.has(pf);
  }

  /** Opens the PF without a token, then sets it (VFIO_DEVICE_FEATURE), as pf_bb_config and the holder do. */
  async start(pf: PciAddress, token: string): Promise<void> {
    await this.#takeToken(pf, token, 'start', async () => {
      const handle = await this.kernel.vfio.openDevice(pf);
      try {
        await this.kernel.vfio.setVfToken(handle, token);
      } catch (err) {
        await this.kernel.vfio.closeDevice(handle);
        throw err;
      }
      this.#handles.set(pf, handle);
    });
  }

  async setToken(pf: PciAddress, token: string): Promise<void> {
    const handle = this.#handles.get(pf);
    if (handle === undefined)
      throw new VfbError('UNAVAILABLE', `the simulated PF driver of ${pf} is not running`);
    await this.#takeToken(pf, token, 'set-token', () => this.kernel.vfio.setVfToken(handle, token));
  }

  async stop(pf: PciAddress): Promise<void> {
    const handle = this.#handles.get(pf);
    if (handle === undefined) return;
    this.#handles.delete(pf);
    await this.kernel.vfio.closeDevice(handle);
  }

  async stopAll(): Promise<void> {
    for (const pf of [...this.#handles.keys()]) await this.stop(pf);
  }

  async #takeToken(pf: PciAddress, token: string, what: string, change: () => Promise<void>): Promise<void> {
    await this.gate(`driver-${what}:before`);
    const accepted = this.#acceptOnly.get(pf);
    if (accepted !== undefined && accepted !== token) {
      throw new KernelError('EINVAL', '/dev/vfio', `the simulated PF driver of ${pf} refused the token`);
    }
    await change();
    await this.gate(`driver-${what}:after`);
  }
}

export function simPlugin(drivers: SimPfDrivers, mode: 'live' | 'drain'): Plugin {
  const manifest: PluginManifest = {
    name: `sim-${mode}`,
    apiVersion: '^1',
    ids: [],
    needsToken: true,
    rotation: mode,
    description: `simulated PF driver on the simulated kernel's VFIO, ${mode} rotation`,
  };
  const driver: PfDriverSpec<Record<string, never>> = {
    starts: 'before-vfs',
    describe: () => `simulated ${mode} PF driver`,
    state: (_ctx, target) =>
      Promise.resolve({
        running: drivers.running(target.address),
        pid: null,
        detail: drivers.running(target.address) ? 'PF open' : 'not running',
        lastExit: null,
      }),
    start: (_ctx, target, token) => drivers.start(target.address, token),
    stop: (_ctx, target) => drivers.stop(target.address),
    close: () => Promise.resolve(),
    ...(mode === 'live'
      ? { setToken: (_ctx, target, token) => drivers.setToken(target.address, token) }
      : {}),
  };
  return lifecyclePlugin({
    manifest,
    options: z.strictObject({}),
    layout: () => ({ pfDriver: VFIO_PCI, vfDriver: VFIO_PCI, vfLimit: null, vfioParameters: [] }),
    driver,
  });
}
