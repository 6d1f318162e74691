/**
 * The demo's broker.yaml and the PF driver stand-ins it names: the three PFs of the simulated host
 * with a file token store instead of Vault, the private bus, and everything else inside the
 * workspace. Written as YAML so a curious reader can compare it with etc/vfbroker/broker.yaml.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { BrokerConfigInput } from '../config/broker-config.js';
import { ASSETS, CX5_PF, FEC_PF, IGB_PF, simulatedHost } from './host.js';
import { writeStandIn } from './stand-ins/common.js';
import { READY_PATTERN } from './stand-ins/dpdk-pf-app.js';
import type { PfBbConfigSettings } from './stand-ins/pf-bb-config.js';
import type { Workspace } from './workspace.js';

export const DPDK_STAND_IN = 'dpdk-pf-app';
/** pf_bb_config by name: the intel-fec plugin finds its daemon with pgrep by that name. */
export const PF_BB_CONFIG_STAND_IN = 'pf_bb_config';

const HEADER = `# broker.yaml of \`vfbroker demo\`: the simulated host of etc/vfbroker/simulated-host.yaml, tokens in
# a file store instead of Vault, a private D-Bus bus, and PF drivers replaced by the demo's
# stand-ins (${DPDK_STAND_IN}, ${PF_BB_CONFIG_STAND_IN}), which act on the simulated host.
# etc/vfbroker/broker.yaml explains every key.
`;

export async function writeBrokerYaml(ws: Workspace, busAddress: string): Promise<void> {
  const host = simulatedHost(ws);
  const dpdk = join(ws.standIns, DPDK_STAND_IN);
  const pfBbConfig = join(ws.standIns, PF_BB_CONFIG_STAND_IN);
  await writeStandIn(
    dpdk,
    new URL('./stand-ins/dpdk-pf-app.js', import.meta.url),
    'a DPDK PF application',
    host,
  );
  const fecSettings: PfBbConfigSettings = { ...host, logDirectory: ws.logs, socketDirectory: ws.sockets };
  await writeStandIn(
    pfBbConfig,
    new URL('./stand-ins/pf-bb-config.js', import.meta.url),
    'pf_bb_config',
    fecSettings,
  );

  const config: BrokerConfigInput = {
    hostId: 'vfbroker-demo',
    store: { type: 'file' },
    sysfs: { simulator: host },
    stateDirectory: ws.state,
    runtimeDirectory: ws.runtime,
    pfs: [
      {
        address: IGB_PF.address,
        plugin: IGB_PF.plugin,
        vfs: IGB_PF.vfs,
        options: {
          command: [dpdk, '-a', IGB_PF.address, '--', '--forward-mode=io'],
          readyPattern: READY_PATTERN,
          startTimeoutMs: 10_000,
        },
      },
      {
        address: FEC_PF.address,
        plugin: FEC_PF.plugin,
        vfs: FEC_PF.vfs,
        options: {
          config: join(ASSETS, 'acc100_config_vf_5g.cfg'),
          binary: pfBbConfig,
          logDirectory: ws.logs,
          socketDirectory: ws.sockets,
          timeoutMs: 10_000,
        },
        rotation: { drainTimeout: '1m' },
      },
      { address: CX5_PF.address, plugin: CX5_PF.plugin, vfs: CX5_PF.vfs },
    ],
    dbus: { busAddress },
    log: { level: 'info' },
  };
  await writeFile(ws.brokerConfig, HEADER + stringify(config), { mode: 0o600 });
}
