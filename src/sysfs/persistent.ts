/**
 * One simulated host shared by several processes (the demo runs the broker, the CLI and the hook
 * against the same one): the simulator's state lives in a JSON file. Before each call the file is
 * re-read if it changed since this process last saw it; after a call that changed the state, the
 * file is replaced atomically (temp file, fsync, rename; mode 0600). The simulator stays the only
 * place with behaviour; this layer moves its state in and out.
 *
 * Within a process, calls run one at a time. Across processes the last writer wins: two processes
 * changing the same host at the same instant can lose one change, which the demo (one broker doing
 * the writes) never does.
 */
import { stat } from 'node:fs/promises';
import { VfbError } from '../errors.js';
import type { PciAddress } from '../pci/address.js';
import { readJsonFile, writeFileAtomic } from '../state-files.js';
import { fsErrno, fromFsError } from './errno.js';
import { loadHostFixture } from './fixture/load.js';
import { SimStateSchema, type SimState } from './sim/state.js';
import { SysfsSimulator, type SimulatedKernel, type SimulatedVfio } from './simulator.js';
import type { DeviceAttribute, WritableDeviceAttribute } from './sysfs.js';

export interface SimulatedSysfsOptions {
  /** The host fixture the state starts from (and returns to on reset). */
  readonly fixture: string;
  /** Where the state is kept; created from the fixture when absent. */
  readonly stateFile: string;
}

export async function openSimulatedSysfs(options: SimulatedSysfsOptions): Promise<SimulatedKernel> {
  const host = new PersistentSimulator(options);
  await host.readKernelLog(); // loads or creates the state now, so a bad fixture fails here
  return host;
}

const STATE_MODE = 0o600;

class PersistentSimulator implements SimulatedKernel {
  readonly description: string;
  readonly vfio: SimulatedVfio;
  private readonly sim: SysfsSimulator;
  /** Identity of the file content this process last read or wrote; null before the first load. */
  private seen: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: SimulatedSysfsOptions) {
    this.description = `simulator:${options.fixture} (state ${options.stateFile})`;
    this.sim = new SysfsSimulator(EMPTY, this.description);
    const vfio = this.sim.vfio;
    this.vfio = {
      openDevice: (request) => this.run(() => vfio.openDevice(request)),
      closeDevice: (handle) => this.run(() => vfio.closeDevice(handle)),
      setVfToken: (handle, token) => this.run(() => vfio.setVfToken(handle, token)),
      getVfToken: (handle) => this.run(() => vfio.getVfToken(handle)),
    };
  }

  readKernelLog(): Promise<string[]> {
    return this.run(() => this.sim.readKernelLog());
  }

  reset(): Promise<void> {
    return this.run(async () => this.sim.restore(await loadHostFixture(this.options.fixture)));
  }

  listDevices(): Promise<PciAddress[]> {
    return this.run(() => this.sim.listDevices());
  }

  exists(addr: PciAddress): Promise<boolean> {
    return this.run(() => this.sim.exists(addr));
  }

  readAttribute(addr: PciAddress, name: DeviceAttribute): Promise<string> {
    return this.run(() => this.sim.readAttribute(addr, name));
  }

  writeAttribute(addr: PciAddress, name: WritableDeviceAttribute, value: string): Promise<void> {
    return this.run(() => this.sim.writeAttribute(addr, name, value));
  }

  driver(addr: PciAddress): Promise<string | null> {
    return this.run(() => this.sim.driver(addr));
  }

  iommuGroup(addr: PciAddress): Promise<number | null> {
    return this.run(() => this.sim.iommuGroup(addr));
  }

  physfn(addr: PciAddress): Promise<PciAddress | null> {
    return this.run(() => this.sim.physfn(addr));
  }

  virtfns(addr: PciAddress): Promise<PciAddress[]> {
    return this.run(() => this.sim.virtfns(addr));
  }

  listDrivers(): Promise<string[]> {
    return this.run(() => this.sim.listDrivers());
  }

  bind(addr: PciAddress, driver: string): Promise<void> {
    return this.run(() => this.sim.bind(addr, driver));
  }

  unbind(addr: PciAddress): Promise<void> {
    return this.run(() => this.sim.unbind(addr));
  }

  probe(addr: PciAddress): Promise<void> {
    return this.run(() => this.sim.probe(addr));
  }

  moduleParameter(module: string, param: string): Promise<string | null> {
    return this.run(() => this.sim.moduleParameter(module, param));
  }

  heldVfioGroup(group: number): Promise<string | null> {
    return this.run(() => this.sim.heldVfioGroup(group));
  }

  /** Load the latest state, run the call, save the state if the call changed it (refused calls log too). */
  private run<T>(call: () => Promise<T>): Promise<T> {
    const result = this.queue.then(async () => {
      await this.load();
      const before = JSON.stringify(this.sim.snapshot());
      try {
        return await call();
      } finally {
        const after = JSON.stringify(this.sim.snapshot());
        if (after !== before) await this.save(after);
      }
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async load(): Promise<void> {
    const file = this.options.stateFile;
    const current = await identity(file);
    if (current === null) {
      this.sim.restore(await loadHostFixture(this.options.fixture));
      await this.save(JSON.stringify(this.sim.snapshot()));
      return;
    }
    if (current === this.seen) return;
    const parsed = SimStateSchema.safeParse(await readJsonFile(file));
    if (!parsed.success) {
      throw new VfbError('STORE_CORRUPT', `${file} is not a simulated host state`, {
        hint: 'delete it: the next call recreates it from the fixture',
        cause: parsed.error,
      });
    }
    this.sim.restore(parsed.data);
    this.seen = current;
  }

  private async save(json: string): Promise<void> {
    const file = this.options.stateFile;
    await writeFileAtomic(file, json, STATE_MODE);
    this.seen = await identity(file);
  }
}

/** What changes whenever the file is replaced: its inode (rename), size and mtime in nanoseconds. */
async function identity(file: string): Promise<string | null> {
  try {
    const st = await stat(file, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch (err) {
    if (fsErrno(err) === 'ENOENT') return null;
    throw fromFsError(err, file, `cannot read the simulated host state ${file}`);
  }
}

/** A placeholder until the first call loads the real state. */
const EMPTY: SimState = {
  version: 2,
  drivers: [],
  modules: {},
  devices: {},
  vfio: { nextHandle: 1, open: [] },
  kernelLog: [],
};
