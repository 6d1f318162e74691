/**
 * One connection to a D-Bus message bus, shared by the broker, the CLI and the hook. It adds what
 * dbus-next 0.10 lacks: a deadline on connecting and on every call, a cap on calls in flight (the
 * system bus refuses a connection's 129th pending call), and an end to pending calls when the
 * connection drops (dbus-next would leave them waiting forever).
 *
 * Shell equivalent: `busctl --address=ADDRESS call DEST PATH IFACE MEMBER SIG ARGS…`.
 */
import { DBusError, Message, MessageType, sessionBus, type MessageBus } from 'dbus-next';
import type { EventEmitter } from 'node:events';
import { VfbError } from '../errors.js';
import { resolveBusAddress, unixSocketPath } from './wire/address.js';
import { argumentsDoNotFit, busDidNotAnswer, cannotConnect, closedBefore, noReply } from './wire/failures.js';

export { SYSTEM_BUS_ADDRESS, unixSocketPath } from './wire/address.js';

/** libdbus's default reply timeout. */
export const DEFAULT_CALL_TIMEOUT_MS = 25_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Half of dbus-daemon's max_replies_per_connection (128 on the system bus); further calls queue here. */
export const MAX_CALLS_IN_FLIGHT = 64;

export interface ConnectOptions {
  /** A D-Bus address, `unix:path=…`. Default: $DBUS_SYSTEM_BUS_ADDRESS, else the system bus socket. */
  readonly address?: string;
  /** Deadline for connecting, authenticating and the bus's Hello. */
  readonly timeoutMs?: number;
}

export interface CallOptions {
  /** Deadline for the reply, counted from the call (time queued behind other calls included). */
  readonly timeoutMs?: number;
}

export interface BusConnection {
  /** The dbus-next bus, for services that install method handlers and send replies. */
  readonly bus: MessageBus;
  /** Our unique name on the bus (`:1.42`). */
  readonly uniqueName: string;
  readonly address: string;
  readonly closed: boolean;
  /**
   * Sends a method call and waits for its reply. Rejects with dbus-next's DBusError when the peer
   * answers with an error, VfbError TIMEOUT at the deadline, VfbError UNAVAILABLE when the
   * connection is or becomes closed.
   */
  call(message: Message, options?: CallOptions): Promise<Message>;
  /** Sends a message that expects no reply (a signal, a method return, an error). */
  send(message: Message): void;
  /** Called once when the connection closes, for whatever reason; returns an unsubscribe function. */
  onClose(listener: (cause: unknown) => void): () => void;
  close(): void;
}

/** A call to the bus itself (org.freedesktop.DBus): RequestName, AddMatch, GetConnectionCredentials… */
export function busDriverCall(member: string, signature = '', body: unknown[] = []): Message {
  return new Message({
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member,
    signature,
    body,
  });
}

export async function connectBus(options: ConnectOptions = {}): Promise<BusConnection> {
  const address = resolveBusAddress(options.address);
  const socketPath = unixSocketPath(address);
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  // EXTERNAL only: the system bus accepts nothing else, and the cookie mechanism would read $HOME.
  const bus = sessionBus({ busAddress: `unix:path=${socketPath}`, authMethods: ['EXTERNAL'] });
  const stream = streamOf(bus);
  return new Promise<BusConnection>((resolve, reject) => {
    const fail = (err: VfbError) => {
      clearTimeout(timer);
      bus.removeAllListeners('connect');
      stream.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(busDidNotAnswer(address, timeoutMs)), timeoutMs);
    const onEarlyError = (err: unknown) => fail(cannotConnect(address, err));
    const onEarlyClose = () => fail(cannotConnect(address, undefined));
    bus.on('error', onEarlyError);
    stream.once('close', onEarlyClose);
    bus.once('connect', () => {
      clearTimeout(timer);
      bus.off('error', onEarlyError);
      stream.off('close', onEarlyClose);
      resolve(new Connection(bus, stream, address));
    });
  });
}

interface Outgoing {
  readonly message: Message;
  readonly resolve: (reply: Message) => void;
  readonly reject: (err: unknown) => void;
  readonly timer: NodeJS.Timeout;
  serial: number | null;
}

class Connection implements BusConnection {
  readonly uniqueName: string;
  private readonly pending = new Map<number, Outgoing>();
  private readonly queue: Outgoing[] = [];
  private readonly closeListeners = new Set<(cause: unknown) => void>();
  private closedBy: { cause: unknown } | null = null;
  private corked = false;

  constructor(
    readonly bus: MessageBus,
    private readonly stream: Socketish,
    readonly address: string,
  ) {
    this.uniqueName = (bus as unknown as { name: string }).name;
    bus.on('message', (msg) => this.onMessage(msg));
    // After the handshake dbus-next reports write failures on a closed stream as 'error' events;
    // without a listener they would crash the process. The 'close' below does the cleanup.
    let lastError: unknown;
    bus.on('error', (err) => {
      lastError = err;
    });
    stream.once('close', () => this.markClosed(lastError ?? new Error('the bus closed the connection')));
  }

  get closed(): boolean {
    return this.closedBy !== null;
  }

  call(message: Message, options: CallOptions = {}): Promise<Message> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    return new Promise<Message>((resolve, reject) => {
      if (this.closedBy) {
        reject(this.closedError(message));
        return;
      }
      const out: Outgoing = {
        message,
        resolve,
        reject,
        serial: null,
        timer: setTimeout(() => this.expire(out, timeoutMs), timeoutMs),
      };
      if (this.pending.size < MAX_CALLS_IN_FLIGHT) this.dispatch(out);
      else this.queue.push(out);
    });
  }

  send(message: Message): void {
    if (this.closedBy) throw this.closedError(message);
    this.batchWrites();
    this.bus.send(message);
  }

  onClose(listener: (cause: unknown) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  close(): void {
    if (this.closedBy) return;
    this.markClosed(new Error('closed by this process'));
    this.bus.disconnect();
  }

  private dispatch(out: Outgoing): void {
    const serial = this.bus.newSerial();
    out.message.serial = serial;
    out.serial = serial;
    this.pending.set(serial, out);
    try {
      this.batchWrites();
      this.bus.send(out.message);
    } catch {
      // The marshaller refused the body. Its message quotes the value, which may be a token: drop it.
      this.pending.delete(serial);
      clearTimeout(out.timer);
      out.reject(argumentsDoNotFit(describe(out.message)));
      this.pump();
    }
  }

  /**
   * Messages sent in one turn of the event loop leave in one write (writev) when the turn ends:
   * a broker under load answers many calls per turn, and one write per reply was an eighth of its
   * CPU. close() ends the stream, which writes what is corked.
   */
  private batchWrites(): void {
    if (this.corked) return;
    this.corked = true;
    this.stream.cork();
    setImmediate(() => {
      this.corked = false;
      this.stream.uncork();
    });
  }

  private onMessage(msg: Message): void {
    if (msg.type !== MessageType.METHOD_RETURN && msg.type !== MessageType.ERROR) return;
    const serial = Number(msg.replySerial);
    const out = this.pending.get(serial);
    if (!out) return;
    this.pending.delete(serial);
    clearTimeout(out.timer);
    if (msg.type === MessageType.ERROR) {
      const text: unknown = msg.body[0];
      out.reject(new DBusError(msg.errorName, typeof text === 'string' ? text : '', msg));
    } else {
      out.resolve(msg);
    }
    this.pump();
  }

  private expire(out: Outgoing, timeoutMs: number): void {
    if (out.serial !== null) this.pending.delete(out.serial);
    else this.queue.splice(this.queue.indexOf(out), 1);
    out.reject(noReply(describe(out.message), timeoutMs));
    this.pump();
  }

  private pump(): void {
    while (this.pending.size < MAX_CALLS_IN_FLIGHT && !this.closedBy) {
      const next = this.queue.shift();
      if (!next) return;
      this.dispatch(next);
    }
  }

  private markClosed(cause: unknown): void {
    if (this.closedBy) return;
    this.closedBy = { cause };
    for (const out of [...this.pending.values(), ...this.queue]) {
      clearTimeout(out.timer);
      out.reject(this.closedError(out.message));
    }
    this.pending.clear();
    this.queue.length = 0;
    for (const listener of this.closeListeners) listener(cause);
    this.closeListeners.clear();
  }

  private closedError(message: Message): VfbError {
    return closedBefore(describe(message), this.closedBy?.cause);
  }
}

function describe(message: Message): string {
  return `${message.destination} ${message.interface}.${message.member}`;
}

type Socketish = EventEmitter & { destroy(): void; cork(): void; uncork(): void };

/**
 * dbus-next keeps its socket private and never reports that it closed; this reaches for it in one
 * place, and fails loudly at connect time if a dbus-next upgrade moves it.
 */
function streamOf(bus: MessageBus): Socketish {
  const stream = (bus as unknown as { _connection?: { stream?: Partial<Socketish> } })._connection?.stream;
  const methods = ['once', 'destroy', 'cork', 'uncork'] as const;
  if (!stream || methods.some((m) => typeof stream[m] !== 'function')) {
    throw new VfbError(
      'INTERNAL',
      'dbus-next no longer exposes its socket; src/dbus/connection.ts needs updating',
    );
  }
  return stream as Socketish;
}
