/**
 * For each plugin the contract suite knows, a host where it has a PF to manage and the fake
 * programs it needs there. A plugin added to the registry without a scenario here fails the suite.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { PciAddress } from '../../../../src/pci/address.js';
import type { PfConfig } from '../../../../src/plugins/contract.js';
import { installDpdkApp, installHolder, installMellanoxTools, installPfBbConfig } from './programs.js';
import { makeWorld, type World } from './world.js';

export interface Scenario {
  /** A fresh world, its fake programs installed, and the PF entry to bring up there. */
  setUp(): Promise<{ world: World; config: PfConfig }>;
}

export const PF_STUB_HOST = [
  'drivers: [pci-pf-stub, vfio-pci]',
  'modules: { vfio_pci: { enable_sriov: Y } }',
  'devices:',
  '  - { address: "0000:00:05.0", id: "1d0f:0053", class: "020000", driver: pci-pf-stub, iommuGroup: 4, sriov: { totalVfs: 4, offset: 1, stride: 1, vfDevice: "ec20" } }',
].join('\n');

export const SCENARIOS: Readonly<Record<string, Scenario>> = {
  igb: {
    async setUp() {
      const world = await makeWorld({ name: 'igb-82576.yaml' });
      installDpdkApp(world, 'dpdk-pf-app');
      const address = '0000:04:00.1' as PciAddress;
      return {
        world,
        config: {
          address,
          vfs: 3,
          options: { command: ['/usr/bin/dpdk-pf-app', '-a', address], readyPattern: 'link up' },
        },
      };
    },
  },
  'intel-fec': {
    async setUp() {
      const world = await makeWorld({ name: 'acc100.yaml' });
      const dirs = { logs: path.join(world.dir, 'log'), sockets: path.join(world.dir, 'sock') };
      await mkdir(dirs.logs);
      await mkdir(dirs.sockets);
      installPfBbConfig(world, dirs);
      const options = {
        config: '/etc/vfbroker/acc100.cfg',
        logDirectory: dirs.logs,
        socketDirectory: dirs.sockets,
      };
      return { world, config: { address: '0000:b1:00.0' as PciAddress, vfs: 4, options } };
    },
  },
  mlx5: {
    async setUp() {
      const world = await makeWorld({ name: 'connectx5.yaml' });
      const address = '0000:5e:00.1' as PciAddress;
      installMellanoxTools(world, address);
      return { world, config: { address, vfs: 2, options: { vfDriver: 'vfio-pci' } } };
    },
  },
  generic: {
    async setUp() {
      const world = await makeWorld({ name: 'qemu-nvme.yaml' });
      installHolder(world);
      return { world, config: { address: '0000:00:04.0' as PciAddress, vfs: 2 } };
    },
  },
  'pf-stub': {
    async setUp() {
      const world = await makeWorld({ yaml: PF_STUB_HOST });
      return { world, config: { address: '0000:00:05.0' as PciAddress, vfs: 4 } };
    },
  },
};
