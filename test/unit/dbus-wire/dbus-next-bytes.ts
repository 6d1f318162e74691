/**
 * dbus-next's own marshaller and parser, as the reference the wire client is checked against: the
 * bytes it writes for a message, and what it reads back from bytes. Its internals have no types,
 * so they are declared here for what the tests use.
 */
import { createRequire } from 'node:module';
import { Message, type MessageType } from 'dbus-next';

const require = createRequire(import.meta.url);
const { marshallMessage } = require('dbus-next/lib/marshall-compat.js') as {
  marshallMessage: (message: Message) => [Buffer, unknown[]];
};
interface DBusBufferLike {
  read(signature: string): unknown[];
  align(power: number): void;
}
const DBusBuffer = require('dbus-next/lib/dbus-buffer.js') as new (
  bytes: Buffer,
  offset: number,
  endian: number,
) => DBusBufferLike;
const { headerTypeName } = require('dbus-next/lib/constants.js') as { headerTypeName: (string | null)[] };

export interface ParsedByDbusNext {
  readonly type: number;
  readonly serial: number;
  readonly path?: string;
  readonly interface?: string;
  readonly member?: string;
  readonly destination?: string;
  readonly signature?: string;
  /** In dbus-next's marshaller form: structs and arrays as arrays, like the wire client's. */
  readonly body: unknown[];
}

export interface MessageFields {
  readonly type?: MessageType;
  readonly serial: number;
  readonly path?: string;
  readonly interface?: string;
  readonly member?: string;
  readonly errorName?: string;
  readonly replySerial?: number;
  readonly destination?: string;
  readonly sender?: string;
  readonly signature?: string;
  readonly body?: unknown[];
}

/** The bytes dbus-next sends for this message. */
export function dbusNextBytes(fields: MessageFields): Buffer {
  // Its types say replySerial is a string; its marshaller writes the number it is given as a UINT32.
  const message = new Message({ ...fields, body: fields.body ?? [] } as unknown as ConstructorParameters<
    typeof Message
  >[0]);
  return marshallMessage(message)[0];
}

/**
 * What dbus-next reads from these bytes: its lib/message.js `unmarshall`, step by step, because
 * that one reads a body even when there is no SIGNATURE field (Hello) and throws.
 */
export function parsedByDbusNext(bytes: Buffer): ParsedByDbusNext {
  const buffer = new DBusBuffer(bytes, 0, bytes[0] as number);
  const [, type, , , , serial, fields] = buffer.read('yyyyuua(yv)') as [
    number,
    number,
    number,
    number,
    number,
    number,
    [number, [unknown, [string]]][],
  ];
  const message: Record<string, unknown> = { type, serial };
  for (const [code, [, [value]]] of fields) message[headerTypeName[code] ?? `field${code}`] = value;
  buffer.align(3);
  const signature = message['signature'];
  message['body'] = typeof signature === 'string' && signature !== '' ? buffer.read(signature) : [];
  return message as unknown as ParsedByDbusNext;
}
