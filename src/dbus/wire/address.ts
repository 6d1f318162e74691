/**
 * Which bus to connect to. Shared by both D-Bus clients (dbus-next's in ../connection.ts and the
 * hook's wire client here), so, like everything in this folder, it must not import dbus-next: the
 * hook bundle would embed it.
 */
import { VfbError } from '../../errors.js';

export const SYSTEM_BUS_ADDRESS = 'unix:path=/run/dbus/system_bus_socket';

/** The address to use: the one given, else $DBUS_SYSTEM_BUS_ADDRESS, else the system bus socket. */
export function resolveBusAddress(address: string | undefined): string {
  return address ?? process.env['DBUS_SYSTEM_BUS_ADDRESS'] ?? SYSTEM_BUS_ADDRESS;
}

/**
 * The socket path of the first `unix:path=` entry of a D-Bus address. Other transports are refused:
 * dbus-next would also accept `unixexec:`, which runs a program named in the address.
 */
export function unixSocketPath(address: string): string {
  for (const entry of address.split(';')) {
    const colon = entry.indexOf(':');
    if (colon < 0 || entry.slice(0, colon) !== 'unix') continue;
    for (const kv of entry.slice(colon + 1).split(',')) {
      if (!kv.startsWith('path=')) continue;
      const path = unescapeAddressValue(kv.slice('path='.length));
      // dbus-next re-parses the address and cannot carry these characters in a path.
      if (path !== null && path.startsWith('/') && !/[,;=\0]/.test(path)) return path;
    }
  }
  throw new VfbError('UNAVAILABLE', `unsupported D-Bus address ${JSON.stringify(address.slice(0, 200))}`, {
    hint: 'give a unix socket address such as unix:path=/run/dbus/system_bus_socket',
  });
}

function unescapeAddressValue(value: string): string | null {
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}
