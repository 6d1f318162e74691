/**
 * The host the hook tests run on, as the sysfs simulator models it:
 * - 0000:3b:00.0 ACC100 PF on vfio-pci, VFs 0000:3b:02.0–0000:3b:03.7 (token needed);
 * - 0000:af:00.0 82576 PF on vfio-pci, VFs 0000:af:02.0–0000:af:02.6 (token needed);
 * - 0000:17:00.0 and 0001:5e:00.0 ConnectX-5 PFs on mlx5_core, VFs from .2 (no token);
 * - 0000:65:00.0 a GPU, 10000:01:00.7 an NVMe behind VMD, 0000:d8:11.5 an unbound NIC (not VFs).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePciAddress } from '../../../src/pci/address.js';
import { SysfsSimulator } from '../../../src/sysfs/simulator.js';

const HOST = `
description: libvirt hook test host
drivers:
  - vfio-pci
  - mlx5_core
  - name: nvidia
    ids: ["10de:2330"]
  - name: nvme
    ids: ["8086:0a54"]
modules:
  vfio_pci:
    enable_sriov: Y
devices:
  - { address: "0000:3b:00.0", id: "8086:0d5c", class: "120000", driver: vfio-pci, driverOverride: vfio-pci, iommuGroup: 40,
      sriov: { totalVfs: 16, offset: 16, stride: 1, vfDevice: "0d5d" } }
  - { address: "0000:af:00.0", id: "8086:10c9", class: "020000", driver: vfio-pci, driverOverride: vfio-pci, iommuGroup: 41,
      sriov: { totalVfs: 7, offset: 16, stride: 1, vfDevice: "10ca" } }
  - { address: "0000:17:00.0", id: "15b3:1017", class: "020000", driver: mlx5_core,
      sriov: { totalVfs: 8, offset: 2, stride: 1, vfDevice: "1018" } }
  - { address: "0001:5e:00.0", id: "15b3:1017", class: "020000", driver: mlx5_core,
      sriov: { totalVfs: 4, offset: 2, stride: 1, vfDevice: "1018" } }
  - { address: "0000:65:00.0", id: "10de:2330", class: "030200", driver: nvidia }
  - { address: "10000:01:00.7", id: "8086:0a54", class: "010802", driver: nvme }
  - { address: "0000:d8:11.5", id: "8086:1572", class: "020000" }
`;

const VFS: readonly [string, number][] = [
  ['0000:3b:00.0', 16],
  ['0000:af:00.0', 7],
  ['0000:17:00.0', 4],
  ['0001:5e:00.0', 4],
];

/** A fresh simulated host with every PF's VFs enabled, as after `vfbroker pf up`. */
export async function simulatedHost(): Promise<SysfsSimulator> {
  const dir = await mkdtemp(join(tmpdir(), 'vfbroker-hook-host-'));
  try {
    const file = join(dir, 'host.yaml');
    await writeFile(file, HOST);
    const sim = await SysfsSimulator.fromFixture(file);
    for (const [pf, n] of VFS) await sim.writeAttribute(parsePciAddress(pf), 'sriov_numvfs', String(n));
    return sim;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
