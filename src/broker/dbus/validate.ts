/**
 * Checks on every argument that arrives over the bus, before the broker sees it. Callers are
 * untrusted: sizes are capped so a call cannot make the broker allocate without bound, and no error
 * here repeats a value that might be a token (a swapped address and token must not leak the token).
 */
import type { PrepareDevice } from '../api.js';
import { VfbError } from '../../errors.js';
import { parsePciAddress, type PciAddress } from '../../pci/address.js';
import { isUuid } from '../../uuid.js';

/** Longest guest name or release reason accepted, in UTF-16 code units. */
export const MAX_TEXT = 4096;
/** Most devices in one PrepareGuest; a guest with more PCI hostdevs than this is not a real one. */
export const MAX_DEVICES = 256;
/** SR-IOV's TotalVFs is a 16-bit field, so no PF can take more. */
export const MAX_VF_COUNT = 0xffff;
/** `ffffffff:ff:1f.7`, the longest canonical PCI address; anything longer is not echoed back. */
const MAX_ADDRESS = 16;

export function guestUuid(value: unknown): string {
  if (!isUuid(value)) {
    throw invalid('the guest UUID is not a UUID (expected 8-4-4-4-12 hex digits, as libvirt prints it)');
  }
  return value.toLowerCase();
}

export function pciAddress(value: unknown, what: string): PciAddress {
  if (typeof value !== 'string') throw invalid(`the ${what} is not a string`);
  if (value.length > MAX_ADDRESS) {
    throw invalid(`the ${what} is not a PCI address (${value.length} characters; expected DDDD:BB:DD.F)`);
  }
  try {
    return parsePciAddress(value);
  } catch (err) {
    if (err instanceof VfbError) throw new VfbError(err.code, `${what}: ${err.message}`, { hint: err.hint });
    throw err;
  }
}

/** Free text that ends up in logs and messages: bounded, one line, no control characters. */
export function text(value: unknown, what: string, options: { readonly allowEmpty?: boolean } = {}): string {
  if (typeof value !== 'string') throw invalid(`the ${what} is not a string`);
  if (value.length > MAX_TEXT) throw invalid(`the ${what} is longer than ${MAX_TEXT} characters`);
  if (value === '' && !options.allowEmpty) throw invalid(`the ${what} is empty`);
  if (/\p{Cc}/u.test(value)) throw invalid(`the ${what} contains control characters`);
  return value;
}

/** "" means the guest definition carries no vf-token; anything else must be a UUID. */
export function presentedToken(value: unknown, device: number): string | null {
  if (value === '') return null;
  if (!isUuid(value)) throw invalid(`device ${device}: the presented vf-token is not a UUID`);
  // The kernel parses tokens case-insensitively, so compare them in one case.
  return value.toLowerCase();
}

export function devices(value: unknown): PrepareDevice[] {
  if (!Array.isArray(value)) throw invalid('the device list is not an array');
  if (value.length > MAX_DEVICES) throw invalid(`more than ${MAX_DEVICES} devices (${value.length})`);
  return value.map((entry: unknown, i) => {
    if (!Array.isArray(entry) || entry.length !== 2)
      throw invalid(`device ${i} is not an (address, token) pair`);
    const [address, token] = entry as unknown[];
    return { address: pciAddress(address, `device ${i} address`), presentedToken: presentedToken(token, i) };
  });
}

export function vfCount(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_VF_COUNT) {
    throw invalid(`the VF count must be a whole number from 0 to ${MAX_VF_COUNT}`);
  }
  return value;
}

function invalid(message: string): VfbError {
  return new VfbError('INVALID_ARGUMENT', message);
}
