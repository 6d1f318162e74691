/**
 * The host `vfbroker demo` simulates (etc/vfbroker/simulated-host.yaml) and the files of the
 * package the demo runs from: the fixture, and the demo's policy, pf_bb_config configuration and
 * example guests in src/demo/assets/ (read from the source tree: the compiler does not copy them).
 */
import { parsePciAddress, type PciAddress } from '../pci/address.js';
import type { SimulatedSysfsOptions } from '../sysfs/persistent.js';
import { packageFile } from '../package-root.js';
import type { Workspace } from './workspace.js';

export const HOST_FIXTURE = packageFile('etc/vfbroker/simulated-host.yaml');
export const ASSETS = packageFile('src/demo/assets');

/** The one simulated host the broker, the stand-ins and the hook share: the fixture, and its state. */
export function simulatedHost(ws: Workspace): SimulatedSysfsOptions {
  return { fixture: HOST_FIXTURE, stateFile: ws.hostState };
}

export interface DemoPf {
  readonly address: PciAddress;
  readonly plugin: 'igb' | 'intel-fec' | 'mlx5';
  readonly card: string;
  /** VFs the demo's broker.yaml asks for. */
  readonly vfs: number;
}

/** The three cards of the fixture; src/demo/assets/policy.yaml grants VFs of the same addresses. */
export const IGB_PF: DemoPf = {
  address: parsePciAddress('0000:04:00.0'),
  plugin: 'igb',
  card: 'Intel 82576',
  vfs: 7,
};
export const FEC_PF: DemoPf = {
  address: parsePciAddress('0000:b1:00.0'),
  plugin: 'intel-fec',
  card: 'Intel ACC100',
  vfs: 16,
};
export const CX5_PF: DemoPf = {
  address: parsePciAddress('0000:5e:00.0'),
  plugin: 'mlx5',
  card: 'Mellanox ConnectX-5',
  vfs: 4,
};
export const DEMO_PFS: readonly DemoPf[] = [IGB_PF, FEC_PF, CX5_PF];
