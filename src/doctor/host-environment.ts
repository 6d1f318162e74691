/**
 * The doctor's environment on a real host: broker.yaml from its path, the sysfs it names, the
 * broker on D-Bus, virsh and QEMU through the process runner, /dev/kmsg and /dev/vfio/devices.
 * When broker.yaml names a simulated host, its kernel log is the simulator's too.
 */
import { stat } from 'node:fs/promises';
import { release } from 'node:os';
import { loadBrokerConfig, type SysfsConfig } from '../config/broker-config.js';
import { BrokerClient } from '../dbus/client.js';
import { toVfbError } from '../errors.js';
import { inspectHookInstallation } from '../install/inspect.js';
import { createLogger } from '../log.js';
import { createNodeRunner } from '../process/node-runner.js';
import { openSimulatedSysfs } from '../sysfs/persistent.js';
import { RealSysfs } from '../sysfs/real.js';
import type { ConfigOutcome, DoctorEnvironment } from './environment.js';
import { readKernelLog } from './kmsg.js';
import { programProbes } from './programs.js';

export interface HostEnvironmentOptions {
  readonly configPath: string;
  /** The broker's bus address; broker.yaml's dbus.busAddress, else the system bus, when absent. */
  readonly busAddress?: string;
  /** Deadline for each call to the broker. */
  readonly callTimeoutMs: number;
}

const VFIO_CDEV = '/dev/vfio/devices';

export async function hostEnvironment(options: HostEnvironmentOptions): Promise<DoctorEnvironment> {
  const config = await loadConfig(options.configPath);
  const loaded = 'config' in config ? config.config : null;
  const { sysfs, kernelLog } = await openHost(loaded?.sysfs ?? { type: 'root', root: '/sys' });
  // The CLI's output is the report: the runner's debug lines have nowhere to go.
  const runner = createNodeRunner({ logger: createLogger({ level: 'silent' }) });
  const address = options.busAddress ?? loaded?.dbus.busAddress ?? undefined;
  return {
    sysfs,
    config,
    kernelRelease: release(),
    connectBroker: () =>
      BrokerClient.connect({
        ...(address === undefined ? {} : { address }),
        callTimeoutMs: options.callTimeoutMs,
      }),
    ...programProbes(runner),
    vfioCdevPresent: () =>
      stat(VFIO_CDEV).then(
        (s) => s.isDirectory(),
        () => false,
      ),
    kernelLog,
    hookInstallation: () =>
      loaded?.sysfs.type === 'simulator'
        ? Promise.resolve(null)
        : inspectHookInstallation({ config: loaded, node: process.execPath, root: '/' }),
  };
}

/** The host's sysfs and kernel log: the kernel's, or both from the simulated host broker.yaml names. */
async function openHost(config: SysfsConfig): Promise<Pick<DoctorEnvironment, 'sysfs' | 'kernelLog'>> {
  if (config.type === 'root')
    return { sysfs: new RealSysfs({ root: config.root }), kernelLog: () => readKernelLog() };
  const host = await openSimulatedSysfs(config);
  return { sysfs: host, kernelLog: async () => ({ readable: true, lines: await host.readKernelLog() }) };
}

async function loadConfig(path: string): Promise<ConfigOutcome> {
  try {
    return { path, config: await loadBrokerConfig(path) };
  } catch (err) {
    return { path, error: toVfbError(err) };
  }
}
