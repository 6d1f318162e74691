/**
 * One entry per method of org.vfbroker.Broker1: check the arguments (synchronously, before the call
 * costs anything), then call the broker and encode its answer in the member's out-signature. The
 * answer is checked too: a broker bug must become an Internal error, not a malformed reply.
 */
import { Variant } from 'dbus-next';
import type { BrokerApi, Caller, DeviceVerdict } from '../api.js';
import { VfbError } from '../../errors.js';
import { isPciAddress } from '../../pci/address.js';
import { isUuid } from '../../uuid.js';
import { PF_SUMMARY_FIELDS, STATUS_FIELDS, type FieldType, type MethodName } from '../../dbus/protocol.js';
import { devices, guestUuid, pciAddress, text, vfCount } from './validate.js';

/** A call whose arguments passed the checks, ready to run for a caller; resolves to the reply body. */
export type CheckedCall = (api: BrokerApi, caller: Caller) => Promise<unknown[]>;

/** Each takes the message body, already known to match the member's in-signature. */
export const MEMBERS: Readonly<Record<MethodName, (body: readonly unknown[]) => CheckedCall>> = {
  PrepareGuest([uuid, name, devs]) {
    const args = [guestUuid(uuid), text(name, 'guest name'), devices(devs)] as const;
    return async (api, caller) => [(await api.prepareGuest(caller, ...args)).map(encodeVerdict)];
  },
  GuestStarted([uuid]) {
    const id = guestUuid(uuid);
    return async (api, caller) => {
      await api.guestStarted(caller, id);
      return [];
    };
  },
  ReleaseGuest([uuid, reason]) {
    const args = [guestUuid(uuid), text(reason, 'release reason', { allowEmpty: true })] as const;
    return async (api, caller) => {
      await api.releaseGuest(caller, ...args);
      return [];
    };
  },
  GetToken([address]) {
    const vf = pciAddress(address, 'VF address');
    return async (api, caller) => {
      const token = await api.getToken(caller, vf);
      // Checked, never quoted.
      if (!isUuid(token)) throw new VfbError('INTERNAL', 'the broker produced a token that is not a UUID');
      return [token];
    };
  },
  Rotate([pf]) {
    const address = pciAddress(pf, 'PF address');
    return async (api, caller) => [await api.rotate(caller, address)];
  },
  ListPfs() {
    return async (api, caller) => [
      (await api.listPfs(caller)).map((pf) => encodeRecord(PF_SUMMARY_FIELDS, pf)),
    ];
  },
  Status() {
    return async (api, caller) => [encodeRecord(STATUS_FIELDS, await api.status(caller))];
  },
  SetNumVfs([pf, count]) {
    const args = [pciAddress(pf, 'PF address'), vfCount(count)] as const;
    return async (api, caller) => {
      await api.setNumVfs(caller, ...args);
      return [];
    };
  },
  PfUp([pf, dryRun]) {
    const args = [pciAddress(pf, 'PF address'), flag(dryRun, 'dryRun')] as const;
    return async (api, caller) => [await api.pfUp(caller, ...args)];
  },
  PfDown([pf, release]) {
    const args = [pciAddress(pf, 'PF address'), flag(release, 'release')] as const;
    return async (api, caller) => {
      await api.pfDown(caller, ...args);
      return [];
    };
  },
  PfStatus([pf]) {
    const address = pciAddress(pf, 'PF address');
    return async (api, caller) => [await api.pfStatus(caller, address)];
  },
};

function flag(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw new VfbError('INVALID_ARGUMENT', `${what} must be a boolean`);
  return value;
}

function encodeVerdict(v: DeviceVerdict): [string, string, string] {
  if (!isPciAddress(v.address) || typeof v.verdict !== 'string' || typeof v.message !== 'string') {
    throw new VfbError('INTERNAL', 'the broker produced a malformed verdict');
  }
  return [v.address, v.verdict, v.message];
}

/** An a{sv} with the fixed D-Bus type of each field; a value of the wrong type is a broker bug. */
export function encodeRecord<T extends object>(
  fields: { readonly [K in keyof T]: FieldType },
  value: T,
): Record<string, Variant> {
  const out: Record<string, Variant> = {};
  for (const key of Object.keys(fields) as (keyof T & string)[]) {
    const type = fields[key];
    const v: unknown = value[key];
    const ok =
      type === 's'
        ? typeof v === 'string'
        : type === 'u'
          ? typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff
          : typeof v === 'boolean';
    if (!ok)
      throw new VfbError('INTERNAL', `the broker produced a malformed ${key} (expected D-Bus type ${type})`);
    out[key] = new Variant(type, v);
  }
  return out;
}
