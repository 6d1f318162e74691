/**
 * SysfsSimulator: the Sysfs interface answered by an in-memory model of the PCI core, the drivers a
 * host fixture loads, and vfio-pci's VF tokens (src/sysfs/sim/). It raises the same errors, for the
 * same paths, that RealSysfs raises on a kernel that answers the same errno, so callers cannot tell
 * the two apart except through the extras below (kernel log, VFIO, reset).
 *
 * The model is the single source of behaviour; this class only translates calls and refusals, and
 * persistent.ts only saves and loads the model's state.
 */
import { isPciAddress, type PciAddress } from '../pci/address.js';
import { kernelRefusal } from './errno.js';
import { loadHostFixture } from './fixture/load.js';
import { SysfsLayout, describe } from './layout.js';
import { checkSysfsName } from './names.js';
import { sortPciAddresses } from './order.js';
import { readAttribute, writeAttribute } from './sim/attributes.js';
import { bindStore, driversProbeStore, findDevice, unbindStore, virtfns } from './sim/core.js';
import { SimRefusal } from './sim/refusal.js';
import { cloneState, type DeviceState, type SimState } from './sim/state.js';
import { closeDevice, getVfToken, groupHeld, openDevice, requestedDevice, setVfToken } from './sim/vfio.js';
import type { DeviceAttribute, Sysfs, WritableDeviceAttribute } from './sysfs.js';

/** The VFIO calls that involve VF tokens, on the simulated kernel. A handle stands for a device fd. */
export interface SimulatedVfio {
  /** `ioctl(group, VFIO_GROUP_GET_DEVICE_FD, "<addr>[ vf_token=<uuid>]")`: a handle for the device. */
  openDevice(request: string): Promise<number>;
  /** `close(device_fd)` */
  closeDevice(handle: number): Promise<void>;
  /** `VFIO_DEVICE_FEATURE` SET | PCI_VF_TOKEN on an open PF. */
  setVfToken(handle: number, token: string): Promise<void>;
  /** `VFIO_DEVICE_FEATURE` GET | PCI_VF_TOKEN: always refused, as the kernel refuses it. */
  getVfToken(handle: number): Promise<never>;
}

/** A simulated host: sysfs, plus what only a simulation can offer. */
export interface SimulatedKernel extends Sysfs {
  readonly vfio: SimulatedVfio;
  /** What dmesg would show, oldest first, without timestamps. */
  readKernelLog(): Promise<string[]>;
  /** Back to the state the fixture describes (log and open VFIO handles cleared). */
  reset(): Promise<void>;
}

/** Paths the simulator names in its errors: those of a host whose sysfs is at /sys. */
const at = new SysfsLayout('/sys');

export class SysfsSimulator implements SimulatedKernel {
  readonly description: string;
  readonly vfio: SimulatedVfio;
  private state: SimState;
  private readonly initial: SimState;

  /** A simulator in `initial`, which reset() returns to. */
  constructor(initial: SimState, description: string) {
    this.description = description;
    this.initial = cloneState(initial);
    this.state = cloneState(initial);
    this.vfio = {
      openDevice: (request) =>
        this.call(vfioPath(this.state, request), vfioOpenMessage(request), (s) => openDevice(s, request)),
      closeDevice: (handle) =>
        this.call('/dev/vfio', `cannot close VFIO device handle ${handle}`, (s) => closeDevice(s, handle)),
      setVfToken: (handle, token) =>
        this.call('/dev/vfio', `cannot set the VF token through VFIO device handle ${handle}`, (s) =>
          setVfToken(s, handle, token),
        ),
      getVfToken: (handle) =>
        this.call('/dev/vfio', `cannot read the VF token through VFIO device handle ${handle}`, (s) =>
          getVfToken(s, handle),
        ),
    };
  }

  /** A simulator of the host described by a fixture file (test/fixtures/hosts/*.yaml). */
  static async fromFixture(file: string): Promise<SysfsSimulator> {
    return new SysfsSimulator(await loadHostFixture(file), `simulator:${file}`);
  }

  /** The whole state, as a copy (for persistence and for tests that compare states). */
  snapshot(): SimState {
    return cloneState(this.state);
  }

  /** Replaces the state, e.g. with one another process saved. */
  restore(state: SimState): void {
    this.state = cloneState(state);
  }

  kernelLog(): string[] {
    return [...this.state.kernelLog];
  }

  readKernelLog(): Promise<string[]> {
    return settle(() => this.kernelLog());
  }

  reset(): Promise<void> {
    return settle(() => {
      this.state = cloneState(this.initial);
    });
  }

  listDevices(): Promise<PciAddress[]> {
    return settle(() => sortPciAddresses(Object.keys(this.state.devices).filter(isPciAddress)));
  }

  exists(addr: PciAddress): Promise<boolean> {
    return settle(() => findDevice(this.state, addr) !== undefined);
  }

  readAttribute(addr: PciAddress, name: DeviceAttribute): Promise<string> {
    return this.call(at.device(addr, name), describe.read(addr, name), (s) =>
      readAttribute(device(s, addr), name),
    );
  }

  writeAttribute(addr: PciAddress, name: WritableDeviceAttribute, value: string): Promise<void> {
    // What reaches the kernel is what `echo` writes: the value and a newline.
    return this.call(at.device(addr, name), describe.write(addr, name, value), (s) =>
      writeAttribute(s, device(s, addr), name, `${value}\n`),
    );
  }

  driver(addr: PciAddress): Promise<string | null> {
    return this.call(at.device(addr), describe.link(addr, 'driver'), (s) => device(s, addr).driver);
  }

  iommuGroup(addr: PciAddress): Promise<number | null> {
    return this.call(at.device(addr), describe.link(addr, 'iommu_group'), (s) => device(s, addr).iommuGroup);
  }

  physfn(addr: PciAddress): Promise<PciAddress | null> {
    return this.call(at.device(addr), describe.link(addr, 'physfn'), (s) => {
      const pf = device(s, addr).physfn;
      return pf !== null && isPciAddress(pf) ? pf : null;
    });
  }

  virtfns(addr: PciAddress): Promise<PciAddress[]> {
    return this.call(at.device(addr), describe.link(addr, 'virtfn'), (s) => virtfns(device(s, addr)));
  }

  listDrivers(): Promise<string[]> {
    return settle(() => this.state.drivers.map((d) => d.name).sort());
  }

  bind(addr: PciAddress, driver: string): Promise<void> {
    return settle(() => checkSysfsName('driver', driver)).then(() =>
      this.call(at.driver(driver, 'bind'), describe.bind(addr, driver), (s) => bindStore(s, addr, driver)),
    );
  }

  async unbind(addr: PciAddress): Promise<void> {
    const driver = await this.driver(addr);
    if (driver === null) return;
    await this.call(at.device(addr, 'driver/unbind'), describe.unbind(addr, driver), (s) =>
      unbindStore(s, device(s, addr)),
    );
  }

  probe(addr: PciAddress): Promise<void> {
    return this.call(at.driversProbe, describe.probe(addr), (s) => driversProbeStore(s, addr));
  }

  moduleParameter(module: string, param: string): Promise<string | null> {
    return settle(() => {
      checkSysfsName('module', module);
      checkSysfsName('module parameter', param);
      const params = Object.hasOwn(this.state.modules, module) ? this.state.modules[module] : undefined;
      return params !== undefined && Object.hasOwn(params, param) ? (params[param] ?? null) : null;
    });
  }

  heldVfioGroup(group: number): Promise<string | null> {
    return settle(() => (groupHeld(this.state, group) ? `/dev/vfio/${group}` : null));
  }

  /** Runs one model operation; a refusal becomes the error RealSysfs raises for `path`. */
  private call<T>(path: string, message: string, op: (state: SimState) => T): Promise<T> {
    return settle(() => {
      try {
        return op(this.state);
      } catch (err) {
        if (err instanceof SimRefusal) throw kernelRefusal(err.errno, path, message);
        throw err;
      }
    });
  }
}

/** The device at addr; ENOENT (its directory is missing) when there is none. */
function device(state: SimState, addr: PciAddress): DeviceState {
  const dev = findDevice(state, addr);
  if (dev === undefined) throw new SimRefusal('ENOENT');
  return dev;
}

/** A synchronous step as a promise: its result, or a rejection with what it threw. */
function settle<T>(step: () => T): Promise<T> {
  try {
    return Promise.resolve(step());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

/** /dev/vfio/<group> of the device a request names, as the open would use. */
function vfioPath(state: SimState, request: string): string {
  const dev = findDevice(state, requestedDevice(request));
  return dev?.iommuGroup == null ? '/dev/vfio' : `/dev/vfio/${dev.iommuGroup}`;
}

/** Names the device only: the rest of the request may be a VF token. */
function vfioOpenMessage(request: string): string {
  const addr = requestedDevice(request);
  return `cannot open ${isPciAddress(addr) ? addr : 'the requested device'} through VFIO`;
}
