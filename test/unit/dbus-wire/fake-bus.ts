/**
 * A scripted stand-in for the bus on a unix socket in a temporary directory, in this process: it
 * reads what the wire client sends (parsed by dbus-next, not by the code under test) and answers
 * with bytes the test chooses, so the tests can send what a real dbus-daemon never would.
 *
 * It answers nothing until it holds the AUTH line, BEGIN, Hello and the first call: a client that
 * waited for OK before sending the rest would get no answer at all.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageType } from 'dbus-next';
import { messageLength } from '../../../src/dbus/wire/message.js';
import { dbusNextBytes, parsedByDbusNext, type ParsedByDbusNext } from './dbus-next-bytes.js';

export interface FakeBusScript {
  /** The line the bus answers AUTH with; `OK <guid>` unless given. */
  readonly authReply?: string;
  /** What to answer Hello with; a method return with our unique name unless given. */
  readonly hello?: (hello: ParsedByDbusNext) => Buffer[];
  /** What to answer each later call with (bytes to write, in order); nothing = never answer. */
  readonly answer?: (call: ParsedByDbusNext) => Buffer[];
  /** Write the answers one byte at a time, so the client sees every split. */
  readonly byteByByte?: boolean;
  /** Read everything, answer nothing at all, not even AUTH. */
  readonly silent?: boolean;
}

export interface FakeBus {
  readonly address: string;
  /** The AUTH line the client sent, without \r\n. */
  authLine(): string | null;
  /** The calls the client sent after Hello. */
  readonly calls: ParsedByDbusNext[];
  stop(): Promise<void>;
}

const GUID = '0123456789abcdef0123456789abcdef';

/** A METHOD_RETURN or ERROR to `call`, written by dbus-next. */
export function replyTo(
  call: ParsedByDbusNext,
  signature: string,
  body: unknown[],
  errorName?: string,
): Buffer {
  return dbusNextBytes({
    type: errorName === undefined ? MessageType.METHOD_RETURN : MessageType.ERROR,
    serial: 1000 + call.serial,
    replySerial: call.serial,
    sender: 'org.freedesktop.DBus',
    destination: ':1.42',
    signature,
    body,
    ...(errorName === undefined ? {} : { errorName }),
  });
}

export async function startFakeBus(script: FakeBusScript): Promise<FakeBus> {
  const dir = await mkdtemp(join(tmpdir(), 'vfbroker-fake-bus-'));
  const path = join(dir, 'bus');
  let auth: string | null = null;
  const calls: ParsedByDbusNext[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let inbox = Buffer.alloc(0);
    let phase: 'auth' | 'messages' = 'auth';
    let hello: ParsedByDbusNext | null = null;
    let answered = false;
    const write = async (chunks: Buffer[]) => {
      for (const chunk of chunks) {
        if (!script.byteByByte) {
          socket.write(chunk);
          continue;
        }
        for (const byte of chunk) {
          socket.write(Buffer.from([byte]));
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
    };
    let queue = Promise.resolve();
    const send = (chunks: Buffer[]): void => {
      queue = queue.then(() => write(chunks));
    };
    socket.on('data', (chunk: Buffer) => {
      inbox = Buffer.concat([inbox, chunk]);
      if (phase === 'auth') {
        const begin = inbox.indexOf('BEGIN\r\n');
        if (begin < 0) return;
        auth = inbox.toString('latin1', 1, inbox.indexOf('\r\n'));
        inbox = inbox.subarray(begin + 'BEGIN\r\n'.length);
        phase = 'messages';
      }
      const messages: ParsedByDbusNext[] = [];
      for (;;) {
        const length = messageLength(inbox, 1 << 20);
        if (length === null || inbox.length < length) break;
        messages.push(parsedByDbusNext(inbox.subarray(0, length)));
        inbox = inbox.subarray(length);
      }
      for (const message of messages) {
        if (message.member === 'Hello') {
          // Held back until the first call is here too: see the file comment.
          hello = message;
          continue;
        }
        calls.push(message);
        if (script.silent) continue;
        if (!answered && hello !== null) {
          answered = true;
          const authReply = script.authReply ?? `OK ${GUID}`;
          send([Buffer.from(`${authReply}\r\n`, 'latin1')]);
          if (!authReply.startsWith('OK ')) return;
          send(script.hello?.(hello) ?? [replyTo(hello, 's', [':1.42'])]);
          send([nameAcquired()]);
        }
        send(script.answer?.(message) ?? []);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    address: `unix:path=${path}`,
    authLine: () => auth,
    calls,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The signal the bus sends a new connection right after Hello: the client must pass over it. */
function nameAcquired(): Buffer {
  return dbusNextBytes({
    type: MessageType.SIGNAL,
    serial: 2,
    sender: 'org.freedesktop.DBus',
    destination: ':1.42',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member: 'NameAcquired',
    signature: 's',
    body: [':1.42'],
  });
}
