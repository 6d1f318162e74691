/**
 * The libvirt hook (runQemuHook, the code the installed bundle runs) against an in-process broker:
 * the D-Bus hop is replaced by a direct call as root. Nothing is lost by that for the tests that use
 * it: a VfbError crosses the bus with its code and message unchanged (src/broker/dbus/service.ts
 * sends them, src/dbus/remote-error.ts rebuilds the same VfbError), and those are what the hook
 * turns into its exit status and stderr line.
 */
import { Readable } from 'node:stream';
import type { BrokerApi, Caller } from '../../src/broker/api.js';
import type { HookBrokerClient } from '../../src/hooks/broker-port.js';
import type { HookLogger } from '../../src/hooks/hook-logger.js';
import { runQemuHook, type QemuHookResult } from '../../src/hooks/qemu-hook.js';
import type { HostPci } from '../../src/hooks/token-devices.js';

/** Root, as the bus vouches for libvirt's hook. */
export const HOOK_CALLER: Caller = { uid: 0, pid: 1, gids: [], unit: 'libvirtd.service', busName: ':1.1' };

/** The hook's broker client, calling `broker()` (the current instance: a test may restart it). */
function directClient(broker: () => BrokerApi): HookBrokerClient {
  return {
    prepareGuest: (uuid, name, devices) => broker().prepareGuest(HOOK_CALLER, uuid, name, devices),
    guestStarted: (uuid) => broker().guestStarted(HOOK_CALLER, uuid),
    releaseGuest: (uuid, reason) => broker().releaseGuest(HOOK_CALLER, uuid, reason),
    close: () => undefined,
  };
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
