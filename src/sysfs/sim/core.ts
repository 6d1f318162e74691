/**
 * The PCI core and driver core, as far as vfbroker can see them: matching a driver to a device
 * (drivers/pci/pci-driver.c pci_match_device), probing (pci_device_probe, really_probe), binding and
 * unbinding (drivers/base/bus.c bind_store, drivers_probe_store), and adding and removing VFs
 * (drivers/pci/iov.c). Driver-specific behaviour comes from the DriverModel, vfio-pci's bus notifier
 * included (vfio_pci_core.c vfio_pci_bus_notifier).
 *
 * Every function checks before it changes anything, so a refused operation leaves the state as it
 * was (apart from kernel log lines, which the kernel writes on refusals too).
 */
import { constants } from 'node:os';
import { formatPciAddress, parsePciAddressParts, type PciAddress } from '../../pci/address.js';
import { refuse } from './refusal.js';
import type { DeviceState, DriverModel, SimState, SriovState } from './state.js';

/** dmesg keeps a ring buffer; so does the simulator. */
const KERNEL_LOG_LINES = 5000;

export function findDevice(state: SimState, addr: string): DeviceState | undefined {
  return Object.hasOwn(state.devices, addr) ? state.devices[addr] : undefined;
}

export function findDriver(state: SimState, name: string | null): DriverModel | undefined {
  return name === null ? undefined : state.drivers.find((d) => d.name === name);
}

/** A line as dev_printk prints it: `<driver or bus> <device>: <message>`. */
export function klog(state: SimState, dev: DeviceState, message: string): void {
  logLine(state, `${dev.driver ?? 'pci'} ${dev.address}: ${message}`);
}

function logLine(state: SimState, line: string): void {
  state.kernelLog.push(line);
  if (state.kernelLog.length > KERNEL_LOG_LINES)
    state.kernelLog.splice(0, state.kernelLog.length - KERNEL_LOG_LINES);
}

export function isVfio(state: SimState, driver: string | null): boolean {
  return findDriver(state, driver)?.kind === 'vfio-pci';
}

export function isOpen(state: SimState, addr: string): boolean {
  return state.vfio.open.some((h) => h.address === addr);
}

/** Where VF n of a PF sits: routing ID = PF's (bus << 8 | devfn) + offset + stride × n, same domain. */
export function vfAddress(pf: DeviceState, sriov: SriovState, n: number): PciAddress | null {
  const p = parsePciAddressParts(pf.address);
  const rid = ((p.bus << 8) | (p.slot << 3) | p.function) + sriov.offset + sriov.stride * n;
  if (rid > 0xffff) return null;
  return formatPciAddress({ domain: p.domain, bus: rid >> 8, slot: (rid >> 3) & 0x1f, function: rid & 7 });
}

/** The enabled VFs of a PF, VF 0 first (the virtfnN links). */
export function virtfns(pf: DeviceState): PciAddress[] {
  const sriov = pf.sriov;
  if (sriov === null) return [];
  const vfs: PciAddress[] = [];
  for (let n = 0; n < sriov.numVfs; n++) {
    const addr = vfAddress(pf, sriov, n);
    if (addr !== null) vfs.push(addr);
  }
  return vfs;
}

/** pci_match_device: a driver_override admits only the driver it names (and always that one). */
export function driverMatches(dev: DeviceState, drv: DriverModel): boolean {
  if (dev.driverOverride !== null) return dev.driverOverride === drv.name;
  return drv.ids.some((id) => id.vendor === dev.vendor && id.device === dev.device);
}

/** echo <addr> > /sys/bus/pci/drivers/<driver>/bind */
export function bindStore(state: SimState, addr: string, driverName: string): void {
  const drv = findDriver(state, driverName);
  if (drv === undefined) refuse('ENOENT'); // no such directory under /sys/bus/pci/drivers
  const dev = findDevice(state, addr);
  if (dev === undefined || !driverMatches(dev, drv)) refuse('ENODEV');
  if (dev.driver !== null) refuse('EBUSY');
  const failed = probe(state, dev, drv);
  if (failed !== null) refuse(failed);
}

/** echo <addr> > /sys/bus/pci/drivers_probe: tries every matching driver; success even if none binds. */
export function driversProbeStore(state: SimState, addr: string): void {
  const dev = findDevice(state, addr);
  if (dev === undefined) refuse('ENODEV');
  attach(state, dev);
}

/** echo <addr> > /sys/bus/pci/devices/<addr>/driver/unbind; nothing to do when unbound. */
export function unbindStore(state: SimState, dev: DeviceState): void {
  if (dev.driver !== null) release(state, dev);
}

/** device_attach: the first driver (in registration order) that matches and probes wins. */
function attach(state: SimState, dev: DeviceState): void {
  if (dev.driver !== null) return;
  for (const drv of state.drivers) {
    if (driverMatches(dev, drv) && probe(state, dev, drv) === null) return;
  }
}

/** really_probe + the driver's probe(): null on success, else the errno the probe failed with. */
function probe(state: SimState, dev: DeviceState, drv: DriverModel): string | null {
  // pci_device_can_probe: a VF is probed only if its PF allows autoprobe or it has an override.
  const pf = dev.physfn === null ? undefined : findDevice(state, dev.physfn);
  if (pf?.sriov && !pf.sriov.autoprobe && dev.driverOverride === null) return 'ENODEV';
  if (drv.kind === 'vfio-pci') {
    if (dev.iommuGroup === null) return probeFailed(state, dev, drv, 'EINVAL');
    if (dev.sriov !== null && dev.sriov.numVfs > 0) {
      logLine(state, `${drv.name} ${dev.address}: Cannot bind to PF with SR-IOV enabled`);
      return probeFailed(state, dev, drv, 'EBUSY');
    }
  }
  probed(dev, drv);
  notifyBound(state, dev);
  return null;
}

/** What a successful probe leaves on the device, at boot (the fixture loader) or later. */
export function probed(dev: DeviceState, drv: DriverModel): void {
  dev.driver = drv.name;
  // vfio_pci_vf_init: every PF gets a random VF token at bind; VFs and plain devices get none.
  if (drv.kind === 'vfio-pci' && dev.sriov !== null) dev.vfTokenSha256 = null;
  // pci_sriov_set_totalvfs refuses a limit above TotalVFs (EINVAL) and any limit while VFs are
  // enabled (EBUSY); the driver ignores both, and the limit stays what it was.
  const sriov = dev.sriov;
  const limit = drv.setsTotalVfs;
  if (sriov !== null && limit !== null && limit <= sriov.totalVfs && sriov.numVfs === 0)
    sriov.driverMaxVfs = limit;
}

function probeFailed(state: SimState, dev: DeviceState, drv: DriverModel, errno: string): string {
  const n = (constants.errno as Record<string, number | undefined>)[errno] ?? 0;
  logLine(state, `${drv.name}: probe of ${dev.address} failed with error -${n}`);
  return errno;
}

/**
 * device_release_driver: the driver's remove(), then pci_iov_remove. vfio-pci's remove blocks in the
 * kernel until every user closes the device; the simulator answers EBUSY instead of hanging (a
 * synchronous model cannot wait). vfbroker's life cycle never gets here with a device open: it asks
 * first (Sysfs.heldVfioGroup) and refuses with BUSY (src/plugins/lifecycle/open-vfs.ts).
 */
function release(state: SimState, dev: DeviceState): void {
  const drv = findDriver(state, dev.driver);
  if (drv?.kind === 'vfio-pci' && isOpen(state, dev.address)) refuse('EBUSY');
  if (dev.sriov !== null && dev.sriov.numVfs > 0 && drv?.removeDisablesSriov === true) disableVfs(state, dev);
  if (dev.sriov !== null) {
    // pci_iov_remove: whatever limit the driver set goes with it.
    dev.sriov.driverMaxVfs = dev.sriov.totalVfs;
    if (dev.sriov.numVfs > 0) klog(state, dev, 'driver left SR-IOV enabled after remove');
  }
  dev.driver = null;
  delete dev.vfTokenSha256;
}

/** pci_enable_sriov's VF half: create VF 0…n-1, let bus notifiers see each, then probe it. */
export function enableVfs(state: SimState, pf: DeviceState, n: number): void {
  const sriov = pf.sriov;
  if (sriov === null) refuse('ENODEV');
  const addresses: PciAddress[] = [];
  for (let i = 0; i < n; i++) {
    const addr = vfAddress(pf, sriov, i);
    // The fixture loader proved every VF up to TotalVFs fits; the kernel answers ENOMEM otherwise.
    if (addr === null || findDevice(state, addr) !== undefined) refuse('ENOMEM');
    addresses.push(addr);
  }
  const groups = pf.iommuGroup === null ? null : usedIommuGroups(state);
  for (const address of addresses) {
    const vf: DeviceState = {
      address,
      vendor: pf.vendor,
      device: sriov.vfDevice,
      class: pf.class,
      numaNode: pf.numaNode,
      iommuGroup: groups === null ? null : allocIommuGroup(groups),
      resetMethods: ['flr'],
      supportedResetMethods: ['flr'],
      driver: null,
      driverOverride: null,
      physfn: pf.address,
      sriov: null,
    };
    state.devices[address] = vf;
    notifyAdded(state, vf, pf);
    attach(state, vf);
  }
  sriov.numVfs = n;
}

/**
 * pci_disable_sriov: unbind and remove every VF. On the kernel, a VF open through VFIO makes this
 * wait, with no limit, until its user closes it ("No device request channel registered, blocked
 * until released by user"; sriov_numvfs reads wait too: test/kernel stage 3); the simulator answers
 * EBUSY to the write instead. vfbroker's life cycle never writes 0 with a VF open: it asks first
 * (Sysfs.heldVfioGroup) and refuses with BUSY (src/plugins/lifecycle/open-vfs.ts).
 */
export function disableVfs(state: SimState, pf: DeviceState): void {
  const vfs = virtfns(pf);
  if (vfs.some((vf) => isOpen(state, vf))) refuse('EBUSY');
  for (const addr of vfs) {
    const vf = findDevice(state, addr);
    if (vf === undefined) continue;
    if (vf.driver !== null) release(state, vf);
    delete state.devices[addr];
  }
  if (pf.sriov !== null) pf.sriov.numVfs = 0;
}

/** BUS_NOTIFY_ADD_DEVICE as vfio-pci sees it: a new VF of its PF gets driver_override=vfio-pci. */
function notifyAdded(state: SimState, vf: DeviceState, pf: DeviceState): void {
  if (!isVfio(state, pf.driver)) return;
  klog(state, pf, `Captured SR-IOV VF ${vf.address} driver_override`);
  vf.driverOverride = pf.driver;
}

/** BUS_NOTIFY_BOUND_DRIVER as vfio-pci sees it: a VF of its PF bound elsewhere gets a warning. */
function notifyBound(state: SimState, dev: DeviceState): void {
  const pf = dev.physfn === null ? undefined : findDevice(state, dev.physfn);
  if (pf === undefined || !isVfio(state, pf.driver) || dev.driver === pf.driver) return;
  klog(
    state,
    pf,
    `VF ${dev.address} bound to driver ${dev.driver ?? '(none)'} while PF bound to driver ${pf.driver ?? '(none)'}`,
  );
}

function usedIommuGroups(state: SimState): Set<number> {
  const used = new Set<number>();
  for (const dev of Object.values(state.devices)) if (dev.iommuGroup !== null) used.add(dev.iommuGroup);
  return used;
}

/**
 * iommu_group_alloc takes the lowest free group number (ida_alloc). `used` is gathered once per
 * enableVfs, not once per VF: 64 PFs × 64 VFs made that quadratic (1.3 s of the bench broker's start).
 */
function allocIommuGroup(used: Set<number>): number {
  let n = 0;
  while (used.has(n)) n++;
  used.add(n);
  return n;
}
