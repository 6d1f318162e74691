/**
 * The three broker calls the libvirt hook makes, over the wire client: the same typed results and
 * the same VfbErrors as BrokerClient (../client.ts) gives for them, with the hook's start-up cost
 * (see connection.ts). Presented tokens are sent, never returned, logged or put in an error.
 */
import type { DeviceVerdict, PrepareDevice } from '../../broker/api.js';
import { BUS_NAME, INTERFACE, METHODS, OBJECT_PATH, signatureOf } from '../protocol.js';
import { WireConnection, type WireConnectOptions } from './connection.js';
import { MalformedMessage } from './malformed.js';
import type { WireValue } from './marshal.js';
import { decodeBody } from './message.js';
import { decodeVerdicts, malformedReply } from './replies.js';
import type { ReadValue } from './unmarshal.js';

export interface WireBrokerClientOptions extends WireConnectOptions {
  /** Deadline for each call's reply. */
  readonly callTimeoutMs: number;
}

type HookMethod = 'PrepareGuest' | 'GuestStarted' | 'ReleaseGuest';

export class WireBrokerClient {
  /** Connects to the bus (the system bus unless `address` is given). */
  static async connect(options: WireBrokerClientOptions): Promise<WireBrokerClient> {
    return new WireBrokerClient(await WireConnection.connect(options), options.callTimeoutMs);
  }

  private constructor(
    private readonly connection: WireConnection,
    private readonly callTimeoutMs: number,
  ) {}

  /** The libvirt hook's gate: one verdict per device. */
  async prepareGuest(
    guestUuid: string,
    guestName: string,
    devices: readonly PrepareDevice[],
  ): Promise<DeviceVerdict[]> {
    const body = devices.map((d) => [d.address, d.presentedToken ?? '']);
    const [verdicts] = await this.call('PrepareGuest', [guestUuid, guestName, body]);
    return decodeVerdicts(verdicts);
  }

  async guestStarted(guestUuid: string): Promise<void> {
    await this.call('GuestStarted', [guestUuid]);
  }

  async releaseGuest(guestUuid: string, reason: string): Promise<void> {
    await this.call('ReleaseGuest', [guestUuid, reason]);
  }

  close(): void {
    this.connection.close();
  }

  private async call(member: HookMethod, body: WireValue[]): Promise<ReadValue[]> {
    const reply = await this.connection.call(
      {
        destination: BUS_NAME,
        path: OBJECT_PATH,
        interface: INTERFACE,
        member,
        signature: signatureOf(METHODS[member].in),
        body,
      },
      this.callTimeoutMs,
    );
    const expected = signatureOf(METHODS[member].out);
    if (reply.signature !== expected) {
      throw malformedReply(member, `signature (${reply.signature}) instead of (${expected})`);
    }
    try {
      return decodeBody(reply);
    } catch (err) {
      if (err instanceof MalformedMessage) throw malformedReply(member, err.why);
      throw err;
    }
  }
}
