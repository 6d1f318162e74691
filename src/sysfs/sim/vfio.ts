/**
 * The VF-token rules of vfio-pci (vfio_pci_core.c: vfio_pci_core_match, vfio_pci_validate_vf_token,
 * vfio_pci_core_feature_token), for the legacy group path. Each rule is a row of REFERENCE.md §1 seen
 * on a real kernel. A "handle" stands for an open device fd.
 *
 * Tokens never reach the state: only their SHA-256 is kept and compared, so the state can be written
 * to a file, and no message or log line here mentions one.
 */
import { createHash } from 'node:crypto';
import { isUuid } from '../../uuid.js';
import { findDevice, isOpen, isVfio, klog, virtfns } from './core.js';
import { refuse } from './refusal.js';
import type { DeviceState, SimState } from './state.js';

/** The device a GET_DEVICE_FD string names (its first word), if any. */
export function requestedDevice(request: string): string {
  const space = request.indexOf(' ');
  return space < 0 ? request : request.slice(0, space);
}

/** VFIO_GROUP_GET_DEVICE_FD with "<addr>" or "<addr> vf_token=<uuid>"; returns the new handle. */
export function openDevice(state: SimState, request: string): number {
  const addr = requestedDevice(request);
  const dev = findDevice(state, addr);
  if (dev === undefined || !isVfio(state, dev.driver)) refuse('ENODEV');
  const token = parseOptions(request.slice(addr.length));
  checkToken(state, dev, token);
  const handle = state.vfio.nextHandle++;
  state.vfio.open.push({ handle, address: dev.address });
  return handle;
}

/**
 * Whether opening /dev/vfio/<group> would answer EBUSY (vfio_group_fops_open): a device of the group
 * is open, and its fd holds the group's file. The simulator models device fds only, never a group
 * opened on its own, so a group is held exactly while one of its devices is open.
 */
export function groupHeld(state: SimState, group: number): boolean {
  return state.vfio.open.some((h) => findDevice(state, h.address)?.iommuGroup === group);
}

export function closeDevice(state: SimState, handle: number): void {
  const i = state.vfio.open.findIndex((h) => h.handle === handle);
  // The kernel would say EBADF for an fd that is not open.
  if (i < 0) refuse('EBADF');
  state.vfio.open.splice(i, 1);
}

/** VFIO_DEVICE_FEATURE SET | PCI_VF_TOKEN: allowed at any time, also while VFs are open. */
export function setVfToken(state: SimState, handle: number, token: string): void {
  const dev = handleDevice(state, handle);
  if (dev.vfTokenSha256 === undefined) refuse('ENOTTY');
  if (!isUuid(token)) refuse('EINVAL');
  dev.vfTokenSha256 = sha256(token);
}

/** VFIO_DEVICE_FEATURE GET | PCI_VF_TOKEN: the feature supports SET only; the token never comes back. */
export function getVfToken(state: SimState, handle: number): never {
  const dev = handleDevice(state, handle);
  refuse(dev.vfTokenSha256 === undefined ? 'ENOTTY' : 'EINVAL');
}

function handleDevice(state: SimState, handle: number): DeviceState {
  const open = state.vfio.open.find((h) => h.handle === handle);
  const dev = open === undefined ? undefined : findDevice(state, open.address);
  if (dev === undefined) refuse('EBADF');
  return dev;
}

/** After the name: nothing, or space-separated options of which only one `vf_token=<uuid>` is known. */
function parseOptions(rest: string): string | null {
  if (rest === '') return null;
  // "0000:00:04.0x" names another device: no device in the group matches.
  if (!rest.startsWith(' ')) refuse('ENODEV');
  let token: string | null = null;
  for (const option of rest.split(' ')) {
    if (option === '') continue;
    if (token !== null || !option.startsWith('vf_token=')) refuse('EINVAL');
    const value = option.slice('vf_token='.length);
    if (!isUuid(value)) refuse('EINVAL');
    token = value;
  }
  return token;
}

function checkToken(state: SimState, dev: DeviceState, token: string | null): void {
  if (dev.physfn !== null) {
    const pf = findDevice(state, dev.physfn);
    if (pf === undefined || !isVfio(state, pf.driver)) {
      if (token === null) return;
      klog(state, dev, 'VF token incorrectly provided, PF not bound to vfio-pci');
      refuse('EINVAL');
    }
    requireToken(state, dev, token, pf.vfTokenSha256 ?? null);
    return;
  }
  if (dev.vfTokenSha256 !== undefined) {
    // A PF needs the current token only while one of its VFs is open; otherwise a token sets it.
    if (virtfns(dev).some((vf) => isOpen(state, vf))) {
      requireToken(state, dev, token, dev.vfTokenSha256);
    } else if (token !== null) {
      dev.vfTokenSha256 = sha256(token);
    }
    return;
  }
  if (token !== null) {
    klog(state, dev, 'VF token incorrectly provided, not a PF or VF');
    refuse('EINVAL');
  }
}

function requireToken(
  state: SimState,
  dev: DeviceState,
  token: string | null,
  expected: string | null,
): void {
  if (token === null) {
    klog(state, dev, 'VF token required to access device');
    refuse('EACCES');
  }
  // null is the random token vfio-pci starts with: nobody can present it.
  if (expected === null || sha256(token) !== expected) {
    klog(state, dev, 'Incorrect VF token provided for device');
    refuse('EACCES');
  }
}

function sha256(token: string): string {
  return createHash('sha256').update(token.toLowerCase()).digest('hex');
}
