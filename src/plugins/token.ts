/**
 * The shape check every token gets before it goes near a PF driver. The kernel parses VF tokens
 * with uuid_parse (36 characters, dashes at fixed places, any case); anything else would be
 * refused with EINVAL deep inside a driver, far from the cause.
 */
import { VfbError } from '../errors.js';
import type { PciAddress } from '../pci/address.js';

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function assertToken(pf: PciAddress, token: string): void {
  // The message never echoes the value: a malformed token may still be most of a real one.
  if (!UUID.test(token)) throw new VfbError('INVALID_ARGUMENT', `the token for PF ${pf} is not a UUID`);
}
