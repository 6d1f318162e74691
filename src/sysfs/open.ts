/** The Sysfs broker.yaml asks for: the kernel's at a root (`/sys`), or a simulated host in a state file. */
import type { SysfsConfig } from '../config/broker-config.js';
import { openSimulatedSysfs } from './persistent.js';
import { RealSysfs } from './real.js';
import type { Sysfs } from './sysfs.js';

export async function openSysfs(config: SysfsConfig): Promise<Sysfs> {
  switch (config.type) {
    case 'root':
      return new RealSysfs({ root: config.root });
    case 'simulator':
      return openSimulatedSysfs({ fixture: config.fixture, stateFile: config.stateFile });
  }
}
