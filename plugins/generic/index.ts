/**
 * generic: any SR-IOV PF that needs no device-specific PF driver (pf-stub class devices, emulated
 * SR-IOV devices). The PF goes to vfio-pci and vfbroker's own PF holder opens it and sets the token
 * through VFIO_DEVICE_FEATURE; VFs are created after that. Rotation is live: the holder replaces
 * the token in place, VFs already open keep working. This plugin claims no PCI ID: the registry
 * chooses it as the fallback only under the conditions in src/plugins/registry.ts.
 */
import { z } from 'zod';
import { VfbError } from '../../src/errors.js';
import type { PciAddress } from '../../src/pci/address.js';
import type { PluginManifest, PluginModule } from '../../src/plugins/contract.js';
import { lifecyclePlugin } from '../../src/plugins/lifecycle/engine.js';
import type { DriverState, PfDriverSpec } from '../../src/plugins/lifecycle/spec.js';
import { DriverSupervisor } from '../../src/plugins/lifecycle/supervisor.js';
import { VFIO_PCI } from '../../src/plugins/lifecycle/vfio.js';
import { PF_HOLDER_MAIN } from '../../src/pfholder/index.js';
import type { Argv } from '../../src/process/argv.js';
import { HolderClient } from './holder-client.js';

const manifest: PluginManifest = {
  name: 'generic',
  apiVersion: '^1',
  ids: [],
  needsToken: true,
  rotation: 'live',
  description: "any SR-IOV PF without a device-specific driver: PF on vfio-pci, held by vfbroker's PF holder",
};

// The holder is a Node process: on a loaded host (or under emulation) its start took up to 17 s.
const READY_TIMEOUT_MS = 60_000;
const STOP_DEADLINE_MS = 5_000;

/** `node <PF_HOLDER_MAIN> --pf <bdf>`: the token never goes into argv or the environment. */
function holderArgv(pf: PciAddress): Argv {
  return [process.execPath, PF_HOLDER_MAIN, '--pf', pf];
}

function holderDriver(): PfDriverSpec<Record<string, never>> {
  const supervisor = new DriverSupervisor('PF holder', STOP_DEADLINE_MS);
  const clients = new Map<PciAddress, HolderClient>();
  const client = (pf: PciAddress): HolderClient | null =>
    supervisor.get(pf) ? (clients.get(pf) ?? null) : null;
  return {
    starts: 'before-vfs',
    describe: () => 'vfbroker PF holder',
    async state(_ctx, target): Promise<DriverState> {
      const base = supervisor.status(target.address, (proc) => `pid ${proc.pid}`);
      const holder = client(target.address);
      if (!holder) return base;
      try {
        const { open, tokenSet } = await holder.status();
        if (open && tokenSet)
          return { ...base, detail: `PF holder pid ${base.pid ?? '?'}: PF open, token set` };
        return {
          ...base,
          running: false,
          detail: `PF holder pid ${base.pid ?? '?'} runs but ${open ? 'has no token set' : 'has not opened the PF'}`,
        };
      } catch (err) {
        return {
          ...base,
          running: false,
          detail: err instanceof Error ? err.message : 'PF holder does not answer',
        };
      }
    },
    async start(ctx, target, token) {
      await supervisor.start(ctx, target.address, holderArgv(target.address), {
        ready: async (proc) => {
          const holder = new HolderClient(proc, target.address);
          clients.set(target.address, holder);
          await holder.waitReady(READY_TIMEOUT_MS);
          await holder.setToken(token);
        },
      });
    },
    async setToken(_ctx, target, token) {
      const holder = client(target.address);
      if (!holder)
        throw new VfbError('UNAVAILABLE', `the PF holder of ${target.address} is not running`, {
          hint: '`vfbroker pf up` starts it',
        });
      await holder.setToken(token);
    },
    async stop(_ctx, target) {
      clients.delete(target.address);
      await supervisor.stop(target.address);
    },
    close: async () => {
      clients.clear();
      await supervisor.closeAll();
    },
  };
}

const generic: PluginModule = {
  manifest,
  create: () =>
    lifecyclePlugin({
      manifest,
      options: z.strictObject({}),
      layout: () => ({ pfDriver: VFIO_PCI, vfDriver: VFIO_PCI, vfLimit: null, vfioParameters: [] }),
      driver: holderDriver(),
    }),
};

export default generic;
