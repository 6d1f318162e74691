/**
 * The broker's D-Bus client: one typed method per member of org.vfbroker.Broker1. Used by the CLI
 * and by the libvirt hook, which starts once per VM start, so this module does nothing at import time
 * and makes exactly one round trip per call (no introspection, no proxy objects).
 *
 * Every failure is a VfbError: the broker's own errors keep their code, bus refusals map to a code of
 * the right family, connection failures are UNAVAILABLE and deadlines TIMEOUT.
 */
import { DBusError, Message, MessageType, Variant } from 'dbus-next';
import type {
  BrokerEvents,
  BrokerStatus,
  DeviceVerdict,
  PfSummary,
  PrepareDevice,
  RotationState,
} from '../broker/api.js';
import { VfbError } from '../errors.js';
import { isPciAddress, type PciAddress } from '../pci/address.js';
import { isUuid } from '../uuid.js';
import {
  busDriverCall,
  connectBus,
  DEFAULT_CALL_TIMEOUT_MS,
  type BusConnection,
  type ConnectOptions,
} from './connection.js';
import {
  BUS_NAME,
  INTERFACE,
  METHODS,
  OBJECT_PATH,
  PF_STATES,
  PF_SUMMARY_FIELDS,
  ROTATION_MODES,
  ROTATION_STATES,
  signatureOf,
  STATUS_FIELDS,
  type FieldType,
  type MethodName,
} from './protocol.js';
import { errorFromReply } from './remote-error.js';
import { decodeVerdicts, isVerdict, malformedReply as malformed } from './wire/replies.js';

export interface BrokerClientOptions extends ConnectOptions {
  /** Deadline for each call's reply; libdbus's 25 s when absent. */
  readonly callTimeoutMs?: number;
}

const SIGNAL_MATCH = `type='signal',sender='${BUS_NAME}',path='${OBJECT_PATH}',interface='${INTERFACE}'`;

export class BrokerClient {
  private readonly callTimeoutMs: number;

  /** Connects to the bus (the system bus unless `address` is given). */
  static async connect(options: BrokerClientOptions = {}): Promise<BrokerClient> {
    return new BrokerClient(await connectBus(options), options);
  }

  constructor(
    readonly connection: BusConnection,
    options: { readonly callTimeoutMs?: number } = {},
  ) {
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  }

  /** The libvirt hook's gate: one verdict per device. Presented tokens are sent, never returned. */
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

  async getToken(address: PciAddress): Promise<string> {
    const [token] = await this.call('GetToken', [address]);
    // Checked, never shown: a malformed value may still be most of a token.
    if (!isUuid(token)) throw malformed('GetToken', 'the token is not a UUID');
    return token;
  }

  async rotate(pf: PciAddress): Promise<RotationState> {
    const [state] = await this.call('Rotate', [pf]);
    if (!isOneOf(ROTATION_STATES, state)) throw malformed('Rotate', 'unknown rotation state');
    return state;
  }

  async listPfs(): Promise<PfSummary[]> {
    const [pfs] = await this.call('ListPfs', []);
    if (!Array.isArray(pfs)) throw malformed('ListPfs', 'not an array');
    return pfs.map((record: unknown) => {
      const pf = decodeRecord(PF_SUMMARY_FIELDS, record, 'ListPfs');
      if (!isPciAddress(pf.address)) throw malformed('ListPfs', 'an address is not a PCI address');
      if (!isOneOf(PF_STATES, pf.state)) throw malformed('ListPfs', 'unknown PF state');
      if (!isOneOf(ROTATION_MODES, pf.rotationMode)) throw malformed('ListPfs', 'unknown rotation mode');
      return { ...pf, address: pf.address, state: pf.state, rotationMode: pf.rotationMode };
    });
  }

  async status(): Promise<BrokerStatus> {
    const [status] = await this.call('Status', []);
    return decodeRecord(STATUS_FIELDS, status, 'Status');
  }

  async setNumVfs(pf: PciAddress, count: number): Promise<void> {
    if (!Number.isInteger(count) || count < 0 || count > 0xffffffff) {
      throw new VfbError('INVALID_ARGUMENT', `invalid VF count ${count}: expected a whole number from 0`);
    }
    await this.call('SetNumVfs', [pf, count]);
  }

  /** Brings a PF up (root); resolves to the plan as text. With dryRun nothing changes. */
  async pfUp(pf: PciAddress, dryRun: boolean): Promise<string> {
    const [plan] = await this.call('PfUp', [pf, dryRun]);
    if (typeof plan !== 'string') throw malformed('PfUp', 'the plan is not a string');
    return plan;
  }

  async pfDown(pf: PciAddress, release: boolean): Promise<void> {
    await this.call('PfDown', [pf, release]);
  }

  /** The PF's life-cycle status, as the broker's PfStatus JSON document (parsed, not validated further). */
  async pfStatus(pf: PciAddress): Promise<unknown> {
    const [status] = await this.call('PfStatus', [pf]);
    if (typeof status !== 'string') throw malformed('PfStatus', 'the status is not a string');
    try {
      return JSON.parse(status) as unknown;
    } catch {
      throw malformed('PfStatus', 'the status is not JSON');
    }
  }

  /**
   * Delivers the broker's signals to `listener` until the returned function is called. Only
   * broadcasts from the current owner of the broker's name arrive: the bus filters on the sender,
   * and unicast signals (which anyone may send us) are ignored.
   */
  async subscribe(listener: Partial<BrokerEvents>): Promise<() => Promise<void>> {
    const onMessage = (msg: Message) => {
      if (msg.type !== MessageType.SIGNAL || msg.destination || msg.path !== OBJECT_PATH) return;
      if (msg.interface !== INTERFACE) return;
      const [a, b, c] = msg.body as unknown[];
      if (msg.member === 'TokenRotated' && isPciAddress(a) && typeof b === 'number') {
        listener.tokenRotated?.(a, b);
      } else if (msg.member === 'GuestRefused' && typeof a === 'string' && isPciAddress(b) && isVerdict(c)) {
        listener.guestRefused?.(a, b, c);
      }
    };
    await this.busCall('AddMatch', [SIGNAL_MATCH]);
    this.connection.bus.on('message', onMessage);
    return async () => {
      this.connection.bus.off('message', onMessage);
      if (!this.connection.closed) await this.busCall('RemoveMatch', [SIGNAL_MATCH]);
    };
  }

  close(): void {
    this.connection.close();
  }

  private async call(member: MethodName, body: unknown[]): Promise<unknown[]> {
    const message = new Message({
      destination: BUS_NAME,
      path: OBJECT_PATH,
      interface: INTERFACE,
      member,
      signature: signatureOf(METHODS[member].in),
      body,
    });
    let reply: Message;
    try {
      reply = await this.connection.call(message, { timeoutMs: this.callTimeoutMs });
    } catch (err) {
      throw callError(err, member);
    }
    if (reply.signature !== signatureOf(METHODS[member].out)) {
      throw malformed(
        member,
        `signature (${reply.signature}) instead of (${signatureOf(METHODS[member].out)})`,
      );
    }
    return reply.body as unknown[];
  }

  private async busCall(member: string, body: string[]): Promise<void> {
    try {
      await this.connection.call(busDriverCall(member, 's', body), { timeoutMs: this.callTimeoutMs });
    } catch (err) {
      throw callError(err, member);
    }
  }
}

/** Whatever a call to `member` rejected with; VfbErrors (TIMEOUT, UNAVAILABLE…) pass unchanged. */
function callError(err: unknown, member: string): VfbError {
  if (err instanceof VfbError) return err;
  if (err instanceof DBusError) {
    const body = (err.reply as { body?: unknown[] } | null | undefined)?.body ?? [];
    return errorFromReply(err.type, body, member, err);
  }
  return new VfbError('INTERNAL', `${member} failed unexpectedly`, { cause: err });
}

type Decoded<F extends Record<string, FieldType>> = {
  -readonly [K in keyof F]: F[K] extends 's' ? string : F[K] extends 'u' ? number : boolean;
};

/** An a{sv} record with a fixed type per key; keys we do not know are ignored (newer brokers). */
function decodeRecord<F extends Record<string, FieldType>>(
  fields: F,
  record: unknown,
  member: string,
): Decoded<F> {
  if (typeof record !== 'object' || record === null) throw malformed(member, 'not a dictionary');
  const out: Record<string, unknown> = {};
  for (const [key, type] of Object.entries(fields)) {
    const v = Object.hasOwn(record, key) ? (record as Record<string, unknown>)[key] : undefined;
    if (!(v instanceof Variant) || v.signature !== type)
      throw malformed(member, `field ${key} missing or not of type ${type}`);
    const ok =
      type === 's'
        ? typeof v.value === 'string'
        : type === 'u'
          ? typeof v.value === 'number'
          : typeof v.value === 'boolean';
    if (!ok) throw malformed(member, `field ${key} is not of type ${type}`);
    out[key] = v.value;
  }
  return out as Decoded<F>;
}

function isOneOf<T extends string>(list: readonly T[], v: unknown): v is T {
  return typeof v === 'string' && (list as readonly string[]).includes(v);
}
