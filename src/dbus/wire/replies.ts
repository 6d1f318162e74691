/**
 * Checks on the values of a method return that both D-Bus clients share (the CLI's dbus-next one in
 * ../client.ts and the hook's wire client), so the two give the same typed results and the same
 * errors for a reply they cannot use. Free of dbus-next, like everything in this folder.
 */
import { VERDICTS, type DeviceVerdict, type Verdict } from '../../broker/api.js';
import { VfbError } from '../../errors.js';
import { isPciAddress } from '../../pci/address.js';

/** PrepareGuest's `a(sss)`, (address, verdict, message) per device, as typed verdicts. */
export function decodeVerdicts(verdicts: unknown): DeviceVerdict[] {
  if (!Array.isArray(verdicts)) throw malformedReply('PrepareGuest', 'not an array');
  return verdicts.map((v: unknown) => {
    if (!Array.isArray(v) || v.length !== 3) throw malformedReply('PrepareGuest', 'not an (sss) struct');
    const [address, verdict, message] = v as unknown[];
    if (!isPciAddress(address)) throw malformedReply('PrepareGuest', 'an address is not a PCI address');
    if (!isVerdict(verdict)) throw malformedReply('PrepareGuest', 'unknown verdict');
    if (typeof message !== 'string') throw malformedReply('PrepareGuest', 'a message is not a string');
    return { address, verdict, message };
  });
}

export function isVerdict(v: unknown): v is Verdict {
  return typeof v === 'string' && (VERDICTS as readonly string[]).includes(v);
}

/** A reply to `member` that is not what the protocol promises; `why` never quotes a value. */
export function malformedReply(member: string, why: string): VfbError {
  return new VfbError('INTERNAL', `malformed reply from the broker to ${member}: ${why}`, {
    hint: 'the broker and this client may come from different vfbroker versions',
  });
}
