/**
 * Reading and writing the files under /sys/bus/pci/devices/<addr>/, formatted as the kernel's show
 * functions print them (pci-sysfs.c, iov.c) and parsed as its store functions parse them. `raw` is
 * what reached the kernel: the caller's value plus the newline echo adds.
 */
import type { DeviceAttribute, WritableDeviceAttribute } from '../sysfs.js';
import { klog } from './core.js';
import { kstrtobool } from './kstrtox.js';
import { refuse } from './refusal.js';
import { storeNumVfs } from './sriov.js';
import { RESET_METHODS, type DeviceState, type SimState, type SriovState } from './state.js';

/** driver_set_override refuses values that would not fit a sysfs page on the way back. */
const MAX_OVERRIDE_BYTES = 4096 - 1;

const hex = (n: number, width: number) => `0x${n.toString(16).padStart(width, '0')}`;

export function readAttribute(dev: DeviceState, name: DeviceAttribute): string {
  switch (name) {
    case 'vendor':
      return hex(dev.vendor, 4);
    case 'device':
      return hex(dev.device, 4);
    case 'class':
      return hex(dev.class, 6);
    case 'numa_node':
      return String(dev.numaNode);
    case 'driver_override':
      // sysfs_emit("%s\n", NULL) prints "(null)".
      return dev.driverOverride ?? '(null)';
    case 'reset_method':
      return dev.resetMethods.join(' ');
    case 'sriov_totalvfs':
      // pci_sriov_get_totalvfs: the bound driver's limit when its probe set one.
      return String(sriovOf(dev).driverMaxVfs);
    case 'sriov_numvfs':
      return String(sriovOf(dev).numVfs);
    case 'sriov_offset':
      return String(sriovOf(dev).offset);
    case 'sriov_stride':
      return String(sriovOf(dev).stride);
    case 'sriov_vf_device':
      // "%x": no 0x, no padding (Linux 6.12; later kernels may print 0x%04x).
      return sriovOf(dev).vfDevice.toString(16);
    case 'sriov_drivers_autoprobe':
      return sriovOf(dev).autoprobe ? '1' : '0';
  }
}

export function writeAttribute(
  state: SimState,
  dev: DeviceState,
  name: WritableDeviceAttribute,
  raw: string,
): void {
  switch (name) {
    case 'driver_override':
      storeDriverOverride(dev, raw);
      return;
    case 'reset_method':
      storeResetMethod(state, dev, raw);
      return;
    case 'sriov_numvfs':
      storeNumVfs(state, dev, sriovOf(dev), raw);
      return;
    case 'sriov_drivers_autoprobe': {
      const sriov = sriovOf(dev);
      const value = kstrtobool(raw);
      if (value === null) refuse('EINVAL');
      sriov.autoprobe = value;
      return;
    }
  }
}

/** The sriov_* files exist on PFs only (sriov_pf_attrs_are_visible); elsewhere they are ENOENT. */
function sriovOf(dev: DeviceState): SriovState {
  if (dev.sriov === null) refuse('ENOENT');
  return dev.sriov;
}

/** drivers/base/driver.c driver_set_override: up to the first NUL, cut at the first newline; empty clears. */
function storeDriverOverride(dev: DeviceState, raw: string): void {
  if (Buffer.byteLength(raw, 'utf8') >= MAX_OVERRIDE_BYTES) refuse('EINVAL');
  const s = raw.split('\0', 1)[0] ?? '';
  const newline = s.indexOf('\n');
  const value = newline < 0 ? s : s.slice(0, newline);
  dev.driverOverride = value === '' ? null : value;
}

/** pci-sysfs.c reset_method_store: "" disables all, "default" restores, else a list of supported names. */
function storeResetMethod(state: SimState, dev: DeviceState, raw: string): void {
  if (sysfsStreq(raw, '')) {
    dev.resetMethods = [];
    klog(state, dev, 'All device reset methods disabled by user');
    return;
  }
  if (sysfsStreq(raw, 'default')) {
    dev.resetMethods = [...dev.supportedResetMethods];
    return;
  }
  const chosen: DeviceState['resetMethods'] = [];
  for (const part of raw.split(' ')) {
    const name = part.trim();
    if (name === '') continue;
    const method = RESET_METHODS.find((m) => m === name);
    if (method === undefined) {
      klog(state, dev, `Invalid reset method '${name.slice(0, 32)}'`);
      refuse('EINVAL');
    }
    if (!dev.supportedResetMethods.includes(method)) {
      klog(state, dev, `Unsupported reset method '${method}'`);
      refuse('EINVAL');
    }
    chosen.push(method);
  }
  dev.resetMethods = chosen;
}

/** sysfs_streq: equal, ignoring one trailing newline on the written value. */
function sysfsStreq(raw: string, s: string): boolean {
  return raw === s || raw === `${s}\n`;
}
