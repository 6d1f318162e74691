/**
 * The broker on the bus: owns org.vfbroker.Broker1, answers the methods of /org/vfbroker/Broker1
 * (interface org.vfbroker.Broker1) by calling a BrokerApi with the caller's identity, and turns the
 * broker's events into signals.
 *
 * Every incoming call is handled here, at dbus-next's low level (`addMethodHandler`), and none by
 * dbus-next's service classes: that way each call carries its sender (the service classes hide it),
 * every error reply is ours (dbus-next would send stack traces), and nothing on the path depends on
 * decorators or prototype binding. See docs/decisions/0001-dbus-library.md.
 */
import { readFile } from 'node:fs/promises';
import { DBusError, Message, MessageFlag, MessageType, NameFlag, RequestNameReply } from 'dbus-next';
import type { BrokerApi, BrokerEvents, Caller } from '../api.js';
import { DBUS_ERROR_PREFIX, ERROR_KINDS, VfbError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { busDriverCall, type BusConnection } from '../../dbus/connection.js';
import {
  BUS_NAME,
  ERROR_REPLY_SIGNATURE,
  INTERFACE,
  isMethodName,
  METHODS,
  OBJECT_PATH,
  signatureOf,
  SIGNALS,
  type MethodName,
  type SignalName,
} from '../../dbus/protocol.js';
import { CallerResolver } from './caller.js';
import { introspectionXml, STANDARD_INTERFACE_NAMES } from './introspect.js';
import { MEMBERS, type CheckedCall } from './members.js';

/** Where the broker core publishes its events; the service subscribes while it is exported. */
export interface BrokerEventSource {
  subscribe(listener: BrokerEvents): () => void;
}

export interface ExportOptions {
  readonly logger: Logger;
  /**
   * Calls in the broker at once; further calls are answered Busy at once, so a flood neither
   * queues without bound nor holds callers' pending-reply slots on the bus.
   */
  readonly maxInFlight?: number;
  /** How long close() waits for calls in flight before giving up on them. */
  readonly drainTimeoutMs?: number;
  /** Deadline for the service's own calls to the bus (RequestName, credentials…). */
  readonly busTimeoutMs?: number;
  /** Where /proc is; tests point it at a fixture. */
  readonly procRoot?: string;
}

export interface ExportedBroker {
  /** Releases the name, answers new calls Unavailable, waits for calls in flight, then detaches. */
  close(): Promise<void>;
}

const DEFAULTS = { maxInFlight: 256, drainTimeoutMs: 10_000, busTimeoutMs: 5_000 } as const;

const BUS_ERROR = {
  unknownMethod: 'org.freedesktop.DBus.Error.UnknownMethod',
  unknownObject: 'org.freedesktop.DBus.Error.UnknownObject',
  unknownInterface: 'org.freedesktop.DBus.Error.UnknownInterface',
  unknownProperty: 'org.freedesktop.DBus.Error.UnknownProperty',
  invalidArgs: 'org.freedesktop.DBus.Error.InvalidArgs',
  fileNotFound: 'org.freedesktop.DBus.Error.FileNotFound',
} as const;

export async function exportBroker(
  connection: BusConnection,
  api: BrokerApi,
  events: BrokerEventSource,
  options: ExportOptions,
): Promise<ExportedBroker> {
  const service = new BrokerService(connection, api, options);
  await service.start(events);
  return { close: () => service.close() };
}

class BrokerService {
  private readonly log: Logger;
  private readonly maxInFlight: number;
  private readonly busTimeoutMs: number;
  private readonly callers: CallerResolver;
  private readonly handler = (msg: Message): boolean => this.onMethodCall(msg);
  private inFlight = 0;
  private saturated = false;
  private closing = false;
  private drained: (() => void) | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly connection: BusConnection,
    private readonly api: BrokerApi,
    private readonly options: ExportOptions,
  ) {
    this.log = options.logger.child({ component: 'dbus' });
    this.maxInFlight = options.maxInFlight ?? DEFAULTS.maxInFlight;
    this.busTimeoutMs = options.busTimeoutMs ?? DEFAULTS.busTimeoutMs;
    this.callers = new CallerResolver(connection, {
      logger: this.log,
      timeoutMs: this.busTimeoutMs,
      ...(options.procRoot === undefined ? {} : { procRoot: options.procRoot }),
    });
  }

  /** Handlers first, name last: a call can arrive the moment the name is ours. */
  async start(events: BrokerEventSource): Promise<void> {
    await this.callers.start();
    this.connection.bus.addMethodHandler(this.handler);
    this.unsubscribe = events.subscribe({
      tokenRotated: (pf, generation) => this.emit('TokenRotated', [pf, generation]),
      guestRefused: (uuid, address, verdict) => this.emit('GuestRefused', [uuid, address, verdict]),
    });
    try {
      await this.requestName();
    } catch (err) {
      await this.detach();
      throw err;
    }
    this.log.info({ name: BUS_NAME, uniqueName: this.connection.uniqueName }, 'broker exported on the bus');
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (!this.connection.closed) {
      try {
        await this.connection.call(busDriverCall('ReleaseName', 's', [BUS_NAME]), {
          timeoutMs: this.busTimeoutMs,
        });
      } catch (err) {
        this.log.warn({ err }, 'could not release the bus name');
      }
    }
    if (this.inFlight > 0) await this.drain();
    await this.detach();
  }

  private async requestName(): Promise<void> {
    let reply: Message;
    try {
      reply = await this.connection.call(
        busDriverCall('RequestName', 'su', [BUS_NAME, NameFlag.DO_NOT_QUEUE]),
        {
          timeoutMs: this.busTimeoutMs,
        },
      );
    } catch (err) {
      if (!(err instanceof DBusError)) throw err;
      if (err.type !== 'org.freedesktop.DBus.Error.AccessDenied') {
        throw new VfbError('UNAVAILABLE', `the bus refused ${BUS_NAME} (${err.type})`, { cause: err });
      }
      throw new VfbError('DENIED', `the bus policy does not let this process own ${BUS_NAME}`, {
        hint: 'run the broker as root with etc/dbus-1/system.d/org.vfbroker.Broker1.conf installed',
        cause: err,
      });
    }
    const result: unknown = reply.body[0];
    if (result !== RequestNameReply.PRIMARY_OWNER && result !== RequestNameReply.ALREADY_OWNER) {
      throw new VfbError('BUSY', `another process already owns ${BUS_NAME}`, {
        hint: 'is another broker running? see `systemctl status vfbroker`',
      });
    }
  }

  private async detach(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.connection.bus.removeMethodHandler(this.handler);
    try {
      await this.callers.stop();
    } catch (err) {
      this.log.debug({ err }, 'could not remove the bus match rule');
    }
  }

  private drain(): Promise<void> {
    const timeoutMs = this.options.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.log.warn(
          { inFlight: this.inFlight, timeoutMs },
          'calls still in flight at shutdown; abandoning them',
        );
        resolve();
      }, timeoutMs);
      this.drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** dbus-next's hook for every incoming method call; true = handled here. Must never throw. */
  private onMethodCall(msg: Message): boolean {
    try {
      this.route(msg);
    } catch (err) {
      this.replyError(msg, err);
    }
    return true;
  }

  private route(msg: Message): void {
    const iface = (msg.interface as string | undefined) ?? inferInterface(msg.member);
    if (iface === 'org.freedesktop.DBus.Peer') return this.peer(msg);
    if (msg.path !== OBJECT_PATH) {
      const xml = iface === 'org.freedesktop.DBus.Introspectable' ? introspectionXml(msg.path) : null;
      if (xml !== null && msg.member === 'Introspect') return this.reply(msg, 's', [xml]);
      return this.replyBusError(msg, BUS_ERROR.unknownObject, `no object at ${msg.path}`);
    }
    if (iface === INTERFACE && isMethodName(msg.member)) return this.invoke(msg, msg.member);
    if (iface === 'org.freedesktop.DBus.Introspectable' && msg.member === 'Introspect') {
      return this.reply(msg, 's', [introspectionXml(OBJECT_PATH)]);
    }
    if (iface === 'org.freedesktop.DBus.Properties') return this.properties(msg);
    if (iface === undefined || iface === INTERFACE || iface === 'org.freedesktop.DBus.Introspectable') {
      return this.replyBusError(msg, BUS_ERROR.unknownMethod, `no method ${msg.member} at ${OBJECT_PATH}`);
    }
    this.replyBusError(msg, BUS_ERROR.unknownInterface, `no interface ${iface} at ${OBJECT_PATH}`);
  }

  private invoke(msg: Message, member: MethodName): void {
    const expected = signatureOf(METHODS[member].in);
    if (msg.signature !== expected) {
      throw new VfbError('INVALID_ARGUMENT', `${member} takes (${expected}), not (${msg.signature})`);
    }
    const call = MEMBERS[member](msg.body);
    if (this.closing) throw new VfbError('UNAVAILABLE', 'the broker is shutting down');
    if (this.inFlight >= this.maxInFlight) {
      if (!this.saturated)
        this.log.warn({ inFlight: this.inFlight }, 'saturated: answering further calls Busy');
      this.saturated = true;
      throw new VfbError('BUSY', `the broker is handling ${this.inFlight} calls; retry shortly`);
    }
    this.inFlight++;
    void this.run(msg, member, call).finally(() => {
      this.inFlight--;
      if (this.inFlight <= this.maxInFlight / 2) this.saturated = false;
      if (this.inFlight === 0) this.drained?.();
    });
  }

  private async run(msg: Message, member: MethodName, call: CheckedCall): Promise<void> {
    let caller: Caller | undefined;
    try {
      caller = await this.callers.resolve(msg.sender);
      const body = await call(this.api, caller);
      this.reply(msg, signatureOf(METHODS[member].out), body);
    } catch (err) {
      this.replyError(msg, err, { member, uid: caller?.uid, pid: caller?.pid });
    }
  }

  private properties(msg: Message): void {
    const [ifaceName, property] = msg.body as unknown[];
    const known =
      ifaceName === INTERFACE || (STANDARD_INTERFACE_NAMES as readonly unknown[]).includes(ifaceName);
    if (msg.member === 'GetAll' && msg.signature === 's') {
      if (!known)
        return this.replyBusError(msg, BUS_ERROR.unknownInterface, `no interface ${String(ifaceName)}`);
      return this.reply(msg, 'a{sv}', [{}]);
    }
    if (
      (msg.member === 'Get' && msg.signature === 'ss') ||
      (msg.member === 'Set' && msg.signature === 'ssv')
    ) {
      // The interface has no properties; its state is read with Status and ListPfs.
      return this.replyBusError(msg, BUS_ERROR.unknownProperty, `no property ${String(property)}`);
    }
    this.replyBusError(msg, BUS_ERROR.invalidArgs, `no method ${msg.member}(${msg.signature}) in Properties`);
  }

  private peer(msg: Message): void {
    if (msg.member === 'Ping' && msg.signature === '') return this.reply(msg, '', []);
    if (msg.member !== 'GetMachineId' || msg.signature !== '') {
      return this.replyBusError(msg, BUS_ERROR.unknownMethod, `no method ${msg.member} in Peer`);
    }
    void readMachineId().then(
      (id) => this.reply(msg, 's', [id]),
      () => this.replyBusError(msg, BUS_ERROR.fileNotFound, 'this host has no machine id'),
    );
  }

  private emit(name: SignalName, body: unknown[]): void {
    try {
      this.connection.send(Message.newSignal(OBJECT_PATH, INTERFACE, name, signatureOf(SIGNALS[name]), body));
    } catch (err) {
      this.log.error({ err: toSafeError(err), signal: name }, 'could not emit a signal');
    }
  }

  private reply(msg: Message, signature: string, body: unknown[]): void {
    if (msg.flags & MessageFlag.NO_REPLY_EXPECTED) return;
    try {
      this.connection.send(Message.newMethodReturn(msg, signature, body));
    } catch (err) {
      this.log.error({ err: toSafeError(err), member: msg.member }, 'could not encode a reply');
      this.sendError(msg, DBUS_ERROR_PREFIX + ERROR_KINDS.INTERNAL.dbus, [
        'internal error',
        'INTERNAL',
        ERROR_KINDS.INTERNAL.hint,
      ]);
    }
  }

  private replyError(msg: Message, err: unknown, context: Record<string, unknown> = {}): void {
    let reply: VfbError;
    if (err instanceof VfbError) {
      reply = err;
      this.log.debug({ ...context, sender: msg.sender, err }, 'call refused');
    } else {
      // A bug: the details go to the log, the caller learns only that it happened.
      reply = new VfbError('INTERNAL', 'internal error');
      this.log.error({ ...context, sender: msg.sender, err }, 'call failed with an unexpected error');
    }
    this.sendError(msg, reply.dbusName, [reply.message, reply.code, reply.hint]);
  }

  private replyBusError(msg: Message, name: string, text: string): void {
    this.sendError(msg, name, [text]);
  }

  private sendError(msg: Message, errorName: string, body: string[]): void {
    if (msg.flags & MessageFlag.NO_REPLY_EXPECTED || this.connection.closed) return;
    const error = new Message({
      type: MessageType.ERROR,
      replySerial: msg.serial as unknown as string,
      destination: msg.sender,
      errorName,
      signature: errorName.startsWith(DBUS_ERROR_PREFIX) ? ERROR_REPLY_SIGNATURE : 's',
      body,
    });
    try {
      this.connection.send(error);
    } catch (err) {
      this.log.error({ err: toSafeError(err), errorName }, 'could not send an error reply');
    }
  }
}

/** D-Bus lets a method call omit its interface; the member then picks it. */
function inferInterface(member: string): string | undefined {
  if (isMethodName(member)) return INTERFACE;
  if (member === 'Introspect') return 'org.freedesktop.DBus.Introspectable';
  if (member === 'Ping' || member === 'GetMachineId') return 'org.freedesktop.DBus.Peer';
  if (member === 'Get' || member === 'GetAll' || member === 'Set') return 'org.freedesktop.DBus.Properties';
  return undefined;
}

async function readMachineId(): Promise<string> {
  try {
    return (await readFile('/etc/machine-id', 'utf8')).trim();
  } catch {
    return (await readFile('/var/lib/dbus/machine-id', 'utf8')).trim();
  }
}

/**
 * dbus-next's marshaller quotes the offending value in its messages, and that value may be a
 * token: keep only the kind of failure.
 */
function toSafeError(err: unknown): unknown {
  if (err instanceof VfbError) return err;
  return new VfbError('INTERNAL', 'dbus-next could not marshal the message (its own text is withheld)');
}
