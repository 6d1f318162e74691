/**
 * mlx5: Mellanox/NVIDIA ConnectX-5 and ConnectX-5 Ex. The PF stays on mlx5_core (DPDK's mlx5
 * driver is bifurcated and never uses vfio-pci), so its VFs open without a token: needsToken is
 * false and PrepareGuest answers no-token-needed. Up checks the firmware's SR-IOV settings when
 * mstconfig is installed, optionally sets the e-switch mode, sets sriov_numvfs, applies per-VF
 * settings with `ip link`, and moves the VFs to vfio-pci when configured.
 */
import { z } from 'zod';
import type { PluginManifest, PluginModule } from '../../src/plugins/contract.js';
import { lifecyclePlugin } from '../../src/plugins/lifecycle/engine.js';
import type { DeviceStep, PfTarget } from '../../src/plugins/lifecycle/spec.js';
import { VFIO_PCI } from '../../src/plugins/lifecycle/vfio.js';
import { eswitchStep } from './eswitch.js';
import { checkFirmware } from './firmware.js';
import { checkVfIndexes, vfSettingSchema, vfSettingsStep } from './vf-settings.js';

const MLX5_CORE = 'mlx5_core';

const manifest: PluginManifest = {
  name: 'mlx5',
  apiVersion: '^1',
  // ConnectX-5 and ConnectX-5 Ex PFs.
  ids: ['15b3:1017', '15b3:1019'],
  needsToken: false,
  rotation: 'none',
  description: 'Mellanox ConnectX-5 / 5 Ex: PF stays on mlx5_core, VFs need no token',
};

const options = z.strictObject({
  /** Where the VFs go: mlx5_core (left as the kernel binds them) or vfio-pci (for guests). */
  vfDriver: z.enum([MLX5_CORE, VFIO_PCI]).default(MLX5_CORE),
  eswitchMode: z.enum(['legacy', 'switchdev']).optional(),
  /** The PF's network interface; when absent, the one `ip -d -j link show` lists with the PF as parentdev. */
  netdev: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,15}$/, 'expected an interface name')
    .optional(),
  vfSettings: z
    .array(vfSettingSchema)
    .refine((list) => new Set(list.map((s) => s.vf)).size === list.length, 'names a VF twice')
    .default([]),
});
type Options = z.output<typeof options>;

function deviceSteps(target: PfTarget<Options>): DeviceStep<Options>[] {
  const { eswitchMode, vfSettings } = target.options;
  return [
    ...(eswitchMode === undefined ? [] : [eswitchStep<Options>(eswitchMode)]),
    ...(vfSettings.length === 0 ? [] : [vfSettingsStep<Options>()]),
  ];
}

const mlx5: PluginModule = {
  manifest,
  create: () =>
    lifecyclePlugin({
      manifest,
      options,
      layout: (target) => ({
        pfDriver: MLX5_CORE,
        vfDriver: target.options.vfDriver === VFIO_PCI ? VFIO_PCI : null,
        // The firmware's NUM_OF_VFS is sriov_totalvfs; mlx5_core adds no lower limit.
        vfLimit: null,
        vfioParameters: [],
      }),
      preflight: async (ctx, target) => {
        checkVfIndexes(target);
        return checkFirmware(ctx, target.address, target.vfs);
      },
      deviceSteps,
      driver: null,
    }),
};

export default mlx5;
