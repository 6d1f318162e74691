/**
 * Whole D-Bus messages (D-Bus specification, "Message Format"): a 12-byte fixed header (byte order,
 * type, flags, protocol version 1, body length, serial), the header fields as `a(yv)`, padding to a
 * multiple of 8, then the body, marshalled by the SIGNATURE field.
 */
import { MalformedMessage } from './malformed.js';
import { marshal, type WireValue } from './marshal.js';
import { parseSignature } from './signature.js';
import { Reader, type ReadValue } from './unmarshal.js';

export const MessageType = { METHOD_CALL: 1, METHOD_RETURN: 2, ERROR: 3, SIGNAL: 4 } as const;

/** Header field codes, and the type each must have. */
const FIELD = {
  PATH: 1,
  INTERFACE: 2,
  MEMBER: 3,
  ERROR_NAME: 4,
  REPLY_SERIAL: 5,
  DESTINATION: 6,
  SIGNATURE: 8,
  UNIX_FDS: 9,
} as const;
const FIELD_TYPE: Readonly<Record<number, string>> = {
  1: 'o',
  2: 's',
  3: 's',
  4: 's',
  5: 'u',
  6: 's',
  7: 's',
  8: 'g',
  9: 'u',
};

/** The fixed header plus the header fields' array length: what tells a message's total length. */
export const PREFIX_BYTES = 16;

export interface MethodCall {
  readonly destination: string;
  readonly path: string;
  readonly interface: string;
  readonly member: string;
  readonly signature: string;
  readonly body: readonly WireValue[];
}

/** A message as the wire client needs it: the header fields it acts on, and the body still marshalled. */
export interface WireMessage {
  readonly type: number;
  readonly serial: number;
  readonly replySerial: number | null;
  readonly errorName: string | null;
  readonly signature: string;
  readonly body: Buffer;
  readonly littleEndian: boolean;
}

/** A METHOD_CALL, little-endian, header fields in code order (as dbus-next writes them). */
export function encodeMethodCall(call: MethodCall, serial: number): Buffer {
  const body = marshal(call.signature, call.body);
  const fields: WireValue[] = [
    [FIELD.PATH, { signature: 'o', value: call.path }],
    [FIELD.INTERFACE, { signature: 's', value: call.interface }],
    [FIELD.MEMBER, { signature: 's', value: call.member }],
    [FIELD.DESTINATION, { signature: 's', value: call.destination }],
  ];
  if (call.signature !== '') fields.push([FIELD.SIGNATURE, { signature: 'g', value: call.signature }]);
  const header = marshal('yyyyuua(yv)', [
    'l'.charCodeAt(0),
    MessageType.METHOD_CALL,
    0,
    1,
    body.length,
    serial,
    fields,
  ]);
  const padding = Buffer.alloc((8 - (header.length % 8)) % 8);
  return Buffer.concat([header, padding, body]);
}

/**
 * The total length of the message that `bytes` starts with, from its first 16 bytes; null when
 * fewer have arrived. Throws for a message that is not D-Bus version 1 or is longer than `maxBytes`.
 */
export function messageLength(bytes: Buffer, maxBytes: number): number | null {
  if (bytes.length < PREFIX_BYTES) return null;
  const littleEndian = byteOrder(bytes);
  if (bytes[3] !== 1) throw new MalformedMessage(`protocol version ${bytes[3] ?? '?'} instead of 1`);
  const bodyLength = littleEndian ? bytes.readUInt32LE(4) : bytes.readUInt32BE(4);
  const fieldsLength = littleEndian ? bytes.readUInt32LE(12) : bytes.readUInt32BE(12);
  const total = PREFIX_BYTES + fieldsLength + ((8 - (fieldsLength % 8)) % 8) + bodyLength;
  if (total > maxBytes)
    throw new MalformedMessage(`a message of ${total} bytes, more than the ${maxBytes} allowed`);
  return total;
}

/** Parses one whole message (exactly messageLength() bytes); the body is left marshalled. */
export function decodeMessage(bytes: Buffer): WireMessage {
  const littleEndian = byteOrder(bytes);
  const reader = new Reader(bytes, littleEndian, 4);
  const bodyLength = reader.uint32();
  const serial = reader.uint32();
  if (serial === 0) throw new MalformedMessage('serial 0');
  const fields = readHeaderFields(reader);
  reader.align(8);
  const bodyStart = reader.position;
  if (bodyStart + bodyLength !== bytes.length) throw new MalformedMessage('the body length does not match');
  if ((fields.get(FIELD.UNIX_FDS) ?? 0) !== 0)
    throw new MalformedMessage('file descriptors were not negotiated');
  const type = bytes[1] as number;
  const replySerial = (fields.get(FIELD.REPLY_SERIAL) as number | undefined) ?? null;
  const errorName = (fields.get(FIELD.ERROR_NAME) as string | undefined) ?? null;
  if ((type === MessageType.METHOD_RETURN || type === MessageType.ERROR) && replySerial === null) {
    throw new MalformedMessage('a reply without REPLY_SERIAL');
  }
  if (type === MessageType.ERROR && errorName === null)
    throw new MalformedMessage('an error without ERROR_NAME');
  return {
    type,
    serial,
    replySerial,
    errorName,
    signature: (fields.get(FIELD.SIGNATURE) as string | undefined) ?? '',
    body: bytes.subarray(bodyStart),
    littleEndian,
  };
}

/** The body's values, read by the message's signature; all of the body must be used. */
export function decodeBody(message: WireMessage): ReadValue[] {
  // The body starts at a multiple of 8 in the message, so alignment counts from its start.
  const reader = new Reader(message.body, message.littleEndian);
  const values = parseSignature(message.signature).map((type) => reader.read(type));
  if (reader.position !== message.body.length) throw new MalformedMessage('bytes left after the body');
  return values;
}

function byteOrder(bytes: Buffer): boolean {
  const order = String.fromCharCode(bytes[0] ?? 0);
  if (order !== 'l' && order !== 'B') throw new MalformedMessage('unknown byte order');
  return order === 'l';
}

/**
 * The header fields, `a(yv)`, by code. A known field must have its type; an unknown one is skipped,
 * as the specification requires.
 */
function readHeaderFields(reader: Reader): Map<number, ReadValue> {
  const length = reader.uint32();
  const end = reader.position + length;
  const fields = new Map<number, ReadValue>();
  while (reader.position < end) {
    reader.align(8);
    const code = reader.byte();
    const { signature, value } = reader.variant();
    const expected = FIELD_TYPE[code];
    if (expected !== undefined && signature !== expected) {
      throw new MalformedMessage(`header field ${code} of type ${signature} instead of ${expected}`);
    }
    fields.set(code, value);
  }
  if (reader.position !== end) throw new MalformedMessage('a header field runs past the header');
  return fields;
}
