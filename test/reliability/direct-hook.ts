/**
 * The libvirt hook (runQemuHook, the code the installed bundle runs) against an in-process broker:
 * the D-Bus hop is replaced by a direct call as root. A broker error still takes the bus's way
 * back: encoded as the service encodes it (name, message, code, hint) and rebuilt by
 * src/dbus/remote-error.ts, so the hook sees exactly what it would over the bus.
 */
import { Readable } from 'node:stream';
import type { BrokerApi, Caller } from '../../src/broker/api.js';
import type { HookBrokerClient } from '../../src/hooks/broker-port.js';
import type { HookLogger } from '../../src/hooks/hook-logger.js';
import { runQemuHook, type QemuHookResult } from '../../src/hooks/qemu-hook.js';
import { errorFromReply } from '../../src/dbus/remote-error.js';
import { toVfbError } from '../../src/errors.js';
import type { HostPci } from '../../src/hooks/token-devices.js';

/** Root, as the bus vouches for libvirt's hook. */
export const HOOK_CALLER: Caller = { uid: 0, pid: 1, gids: [], unit: 'libvirtd.service', busName: ':1.1' };

/** The hook's broker client, calling `broker()` (the current instance: a test may restart it). */
function directClient(broker: () => BrokerApi): HookBrokerClient {
  return {
    prepareGuest: (uuid, name, devices) =>
      overTheBus('PrepareGuest', broker().prepareGuest(HOOK_CALLER, uuid, name, devices)),
    guestStarted: (uuid) => overTheBus('GuestStarted', broker().guestStarted(HOOK_CALLER, uuid)),
    releaseGuest: (uuid, reason) =>
      overTheBus('ReleaseGuest', broker().releaseGuest(HOOK_CALLER, uuid, reason)),
    close: () => undefined,
  };
}

async function overTheBus<T>(member: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    const e = toVfbError(err);
    throw errorFromReply(e.dbusName, [e.message, e.code, e.hint], member);
  }
}

export interface DirectHookOptions {
  readonly broker: () => BrokerApi;
  readonly sysfs: HostPci;
  readonly logger: HookLogger;
  readonly deadlineMs?: number;
}

/** One hook run: `args` as libvirt passes them, `xml` on stdin. */
export function runDirectHook(
  options: DirectHookOptions,
  args: readonly string[],
  xml: string,
): Promise<QemuHookResult> {
  return runQemuHook({
    argv: args,
    stdin: Readable.from([Buffer.from(xml)]),
    sysfs: options.sysfs,
    connectBroker: () => Promise.resolve(directClient(options.broker)),
    logger: options.logger,
    ...(options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs }),
  });
}
