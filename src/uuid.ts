/**
 * VF tokens as the kernel sees them. vfio-pci parses the `vf_token=` option of GET_DEVICE_FD with
 * uuid_parse() and takes the 16 bytes of VFIO_DEVICE_FEATURE(PCI_VF_TOKEN) as a uuid_t, so both paths
 * compare the bytes in the order the text spells them (not the mixed-endian GUID order).
 */
import { VfbError } from './errors.js';

/** 8-4-4-4-12 hex digits, either case: guest UUIDs and VF tokens alike. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_PATTERN.test(value);
}

/** The 16 bytes of a UUID, in text order. The value is never echoed: a malformed token is still a secret. */
export function uuidToBytes(uuid: string): Uint8Array {
  if (!isUuid(uuid)) {
    throw new VfbError('INVALID_ARGUMENT', 'the token is not a UUID (expected 8-4-4-4-12 hex digits)', {
      details: { errno: 'EINVAL' },
    });
  }
  return Uint8Array.from(Buffer.from(uuid.replaceAll('-', ''), 'hex'));
}
