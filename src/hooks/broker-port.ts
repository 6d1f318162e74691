/**
 * The part of the broker's D-Bus client the hook uses. The installed hook uses the wire client
 * (WireBrokerClient, src/dbus/wire/), which costs it far less start-up time than dbus-next;
 * BrokerClient (src/dbus/client.ts) satisfies it too, and tests use a double. The hook creates the
 * client only when a call is needed, through ConnectBroker, so a guest without VF tokens never loads
 * the D-Bus code at all.
 */
import type { DeviceVerdict, PrepareDevice } from '../broker/api.js';

export interface HookBrokerClient {
  prepareGuest(
    guestUuid: string,
    guestName: string,
    devices: readonly PrepareDevice[],
  ): Promise<DeviceVerdict[]>;
  guestStarted(guestUuid: string): Promise<void>;
  releaseGuest(guestUuid: string, reason: string): Promise<void>;
  close(): void;
}

export type ConnectBroker = () => Promise<HookBrokerClient>;
