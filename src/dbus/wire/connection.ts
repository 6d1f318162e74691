/**
 * A minimal D-Bus client connection, for the libvirt hook only: a unix socket, SASL EXTERNAL, Hello,
 * and method calls with a deadline each. It exists because the hook's start-up budget cannot pay
 * for dbus-next (docs/decisions/0007-hook-dbus-wire-client.md); the broker and the CLI keep
 * dbus-next (../connection.ts). Nothing here logs, and no error quotes a value that was sent.
 *
 * One round trip: the first call goes out in a single write with everything before it — the NUL
 * byte, `AUTH EXTERNAL <uid in hex>`, `BEGIN` (without waiting for OK: the server reads BEGIN after
 * answering AUTH, and the first octet after BEGIN's \r\n starts the message stream), the bus's
 * Hello and the call itself (the bus handles a connection's messages in order, Hello first).
 *
 * Deadlines as in ../connection.ts: `timeoutMs` of connect() bounds connecting the socket, and
 * again authenticating and Hello once they are sent; each call has its own.
 *
 * Shell equivalent: `busctl --address=ADDRESS call DEST PATH IFACE MEMBER SIG ARGS…`.
 */
import { createConnection, type Socket } from 'node:net';
import { VfbError } from '../../errors.js';
import { errorFromReply } from '../remote-error.js';
import { resolveBusAddress, unixSocketPath } from './address.js';
import { argumentsDoNotFit, busDidNotAnswer, cannotConnect, closedBefore, noReply } from './failures.js';
import { MalformedMessage } from './malformed.js';
import {
  decodeBody,
  decodeMessage,
  encodeMethodCall,
  messageLength,
  MessageType,
  type MethodCall,
  type WireMessage,
} from './message.js';

export interface WireConnectOptions {
  /** A D-Bus address, `unix:path=…`. Default: $DBUS_SYSTEM_BUS_ADDRESS, else the system bus socket. */
  readonly address?: string;
  /** Deadline for connecting, and for authenticating and the bus's Hello. */
  readonly timeoutMs: number;
}

/** Far above any reply the hook gets (PrepareGuest: one line per device, at most 256 devices). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** The server's answer to AUTH is one short line: `OK <32 hex digits>`. */
const MAX_AUTH_LINE = 512;
const HELLO_SERIAL = 1;

const HELLO: MethodCall = {
  destination: 'org.freedesktop.DBus',
  path: '/org/freedesktop/DBus',
  interface: 'org.freedesktop.DBus',
  member: 'Hello',
  signature: '',
  body: [],
};

/** The serial of the first call after the handshake. */
export const FIRST_CALL_SERIAL = HELLO_SERIAL + 1;

/**
 * What goes before the first call, in the same write: the NUL byte, `AUTH EXTERNAL`, `BEGIN` and
 * the bus's Hello (see the top of this file).
 */
export function handshake(): Buffer {
  // The server checks the uid against the socket's credentials; ours is what it will find.
  const uid = Buffer.from(String(process.getuid?.() ?? 0)).toString('hex');
  return Buffer.concat([
    Buffer.from(`\0AUTH EXTERNAL ${uid}\r\nBEGIN\r\n`, 'latin1'),
    encodeMethodCall(HELLO, HELLO_SERIAL),
  ]);
}

interface Pending {
  readonly call: MethodCall;
  readonly resolve: (reply: WireMessage) => void;
  readonly reject: (err: VfbError) => void;
  readonly timer: NodeJS.Timeout;
}

type Phase = 'unsent' | 'auth' | 'hello' | 'ready';

export class WireConnection {
  private phase: Phase = 'unsent';
  private closed = false;
  private inbox: Buffer = Buffer.alloc(0);
  private nextSerial = FIRST_CALL_SERIAL;
  private lastSocketError: unknown;
  private readonly pending = new Map<number, Pending>();

  /** Connects the socket; nothing is sent until the first call. */
  static connect(options: WireConnectOptions): Promise<WireConnection> {
    const address = resolveBusAddress(options.address);
    const path = unixSocketPath(address);
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      const onError = (err: unknown) => {
        clearTimeout(timer);
        reject(cannotConnect(address, err));
      };
      const timer = setTimeout(() => {
        socket.off('error', onError);
        socket.destroy();
        reject(busDidNotAnswer(address, options.timeoutMs));
      }, options.timeoutMs);
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new WireConnection(socket, address, options.timeoutMs));
      });
    });
  }

  private constructor(
    private readonly socket: Socket,
    private readonly address: string,
    private readonly handshakeTimeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    // The 'close' that follows does the cleanup; the error only says why.
    socket.on('error', (err) => (this.lastSocketError = err));
    socket.once('close', () => this.fail((p) => this.closedError(p.call)));
  }

  /**
   * Sends a method call and resolves to its METHOD_RETURN (body still marshalled). Rejects with the
   * VfbError the ERROR reply maps to, TIMEOUT at the deadline, UNAVAILABLE when the connection is
   * or becomes closed.
   */
  call(call: MethodCall, timeoutMs: number): Promise<WireMessage> {
    if (this.closed) return Promise.reject(this.closedError(call));
    let bytes: Buffer;
    const serial = this.nextSerial++;
    try {
      bytes = encodeMethodCall(call, serial);
    } catch {
      return Promise.reject(argumentsDoNotFit(describe(call)));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(serial);
        reject(noReply(describe(call), timeoutMs));
      }, timeoutMs);
      this.pending.set(serial, { call, resolve, reject, timer });
      if (this.phase === 'unsent') this.sendHandshakeWith(bytes);
      else this.socket.write(bytes);
    });
  }

  close(): void {
    this.fail((p) => this.closedError(p.call));
  }

  private sendHandshakeWith(first: Buffer): void {
    this.phase = 'auth';
    const timer = setTimeout(
      () => this.fail(() => busDidNotAnswer(this.address, this.handshakeTimeoutMs)),
      this.handshakeTimeoutMs,
    );
    this.pending.set(HELLO_SERIAL, {
      call: HELLO,
      resolve: () => (this.phase = 'ready'),
      // The bus refused us: every call waiting behind Hello fails the same way.
      reject: (err) => this.fail(() => err),
      timer,
    });
    this.socket.write(Buffer.concat([handshake(), first]));
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    this.inbox = this.inbox.length === 0 ? chunk : Buffer.concat([this.inbox, chunk]);
    try {
      if (this.phase === 'unsent' || this.phase === 'auth') {
        const end = this.inbox.indexOf('\r\n');
        if (end < 0) {
          if (this.inbox.length > MAX_AUTH_LINE) this.authFailed();
          return;
        }
        // Anything but OK (REJECTED, ERROR, DATA) means EXTERNAL did not get us in.
        if (!/^OK [0-9a-fA-F]+$/.test(this.inbox.toString('latin1', 0, end))) {
          this.authFailed();
          return;
        }
        this.inbox = this.inbox.subarray(end + 2);
        this.phase = 'hello';
      }
      for (;;) {
        const length = messageLength(this.inbox, MAX_MESSAGE_BYTES);
        if (length === null || this.inbox.length < length) return;
        const message = decodeMessage(this.inbox.subarray(0, length));
        this.inbox = this.inbox.subarray(length);
        this.dispatch(message);
      }
    } catch (err) {
      // The stream cannot be trusted past a message it cannot frame or read.
      const why = err instanceof MalformedMessage ? err.why : 'unreadable';
      this.fail(
        () => new VfbError('INTERNAL', `malformed message from the D-Bus bus at ${this.address}: ${why}`),
      );
    }
  }

  /** A reply to one of our calls settles it; anything else (NameAcquired, calls to us) is ignored. */
  private dispatch(message: WireMessage): void {
    if (message.type !== MessageType.METHOD_RETURN && message.type !== MessageType.ERROR) return;
    const pending = message.replySerial === null ? undefined : this.pending.get(message.replySerial);
    if (pending === undefined || message.replySerial === null) return;
    this.pending.delete(message.replySerial);
    clearTimeout(pending.timer);
    if (message.type === MessageType.METHOD_RETURN) pending.resolve(message);
    else pending.reject(errorFromReply(message.errorName ?? '', errorBody(message), pending.call.member));
  }

  private authFailed(): void {
    this.fail(() => cannotConnect(this.address, new Error('EXTERNAL authentication was rejected')));
  }

  /** Ends the connection once, rejecting every call still waiting with the error `errorFor` gives. */
  private fail(errorFor: (p: Pending) => VfbError): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(errorFor(p));
    }
    this.pending.clear();
    this.socket.destroy();
  }

  private closedError(call: MethodCall): VfbError {
    // Before Hello was answered, this is a connection that never came up, as for dbus-next.
    if (this.phase !== 'ready') return cannotConnect(this.address, this.lastSocketError);
    return closedBefore(describe(call), this.lastSocketError);
  }
}

/** An error reply's strings; any other body says nothing we can use. */
function errorBody(message: WireMessage): unknown[] {
  if (!/^s*$/.test(message.signature)) return [];
  try {
    return decodeBody(message);
  } catch {
    return [];
  }
}

function describe(call: MethodCall): string {
  return `${call.destination} ${call.interface}.${call.member}`;
}
