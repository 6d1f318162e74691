/**
 * The wire client's marshalling against dbus-next's own: the hook's three calls must be byte for
 * byte what dbus-next sends, and replies written by dbus-next must read back to the same values.
 * Malformed input is refused with a VfbError, never half-read.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageType } from 'dbus-next';
import { BUS_NAME, INTERFACE, OBJECT_PATH } from '../../../src/dbus/protocol.js';
import { MalformedMessage } from '../../../src/dbus/wire/malformed.js';
import { marshal } from '../../../src/dbus/wire/marshal.js';
import {
  decodeBody,
  decodeMessage,
  encodeMethodCall,
  messageLength,
  type MethodCall,
} from '../../../src/dbus/wire/message.js';
import { VfbError } from '../../../src/errors.js';
import { dbusNextBytes, parsedByDbusNext } from './dbus-next-bytes.js';

const TOKEN = '6f1c2a4e-8d3b-4f7a-9c1e-2b5d7e9f0a13';
const GUEST = '0d5a8a41-6f5c-4c7e-8a9b-3e2f1d0c9b8a';
/** Two-, three- and four-byte UTF-8 sequences: lengths are bytes, not characters. */
const UNICODE_NAME = 'vm-ünïcødé-日本語-🚀';

function brokerCall(member: string, signature: string, body: MethodCall['body']): MethodCall {
  return { destination: BUS_NAME, path: OBJECT_PATH, interface: INTERFACE, member, signature, body };
}

const devices = (n: number) =>
  Array.from({ length: n }, (_, i) => [`0000:3b:02.${i % 8}`, i % 3 === 0 ? '' : TOKEN]);

const CALLS: [string, MethodCall][] = [
  ['PrepareGuest, 8 devices', brokerCall('PrepareGuest', 'ssa(ss)', [GUEST, 'vdu-1', devices(8)])],
  [
    'PrepareGuest, no device (empty array of structs)',
    brokerCall('PrepareGuest', 'ssa(ss)', [GUEST, 'vdu-1', []]),
  ],
  [
    'PrepareGuest, multi-byte UTF-8 name',
    brokerCall('PrepareGuest', 'ssa(ss)', [GUEST, UNICODE_NAME, devices(3)]),
  ],
  ['GuestStarted', brokerCall('GuestStarted', 's', [GUEST])],
  ['ReleaseGuest', brokerCall('ReleaseGuest', 'ss', [GUEST, 'shutdown'])],
  ['ReleaseGuest, empty reason', brokerCall('ReleaseGuest', 'ss', [GUEST, ''])],
  [
    'Hello (no body, no signature field)',
    {
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'Hello',
      signature: '',
      body: [],
    },
  ],
];

describe('wire client: method calls marshalled as dbus-next marshals them', () => {
  for (const [name, call] of CALLS) {
    it(name, () => {
      const expected = dbusNextBytes({ ...call, body: [...call.body], serial: 2 });
      assert.deepEqual(encodeMethodCall(call, 2), expected);
    });
  }

  it('every string length modulo 8, so every padding case before the next field and the body', () => {
    for (let n = 0; n < 16; n++) {
      const name = 'x'.repeat(n);
      const reason = 'é'.repeat(n);
      const call = brokerCall('ReleaseGuest', 'ss', [name, reason]);
      assert.deepEqual(
        encodeMethodCall(call, 7),
        dbusNextBytes({ ...call, body: [name, reason], serial: 7 }),
        `n=${n}`,
      );
      const prepare = brokerCall('PrepareGuest', 'ssa(ss)', [name, reason, [[name, reason]]]);
      assert.deepEqual(
        encodeMethodCall(prepare, 0xffffffff),
        dbusNextBytes({ ...prepare, body: [name, reason, [[name, reason]]], serial: 0xffffffff }),
        `prepare n=${n}`,
      );
    }
  });

  it('dbus-next reads back what the wire client wrote', () => {
    const call = CALLS[2]?.[1] as MethodCall;
    const parsed = parsedByDbusNext(encodeMethodCall(call, 9));
    assert.deepEqual(
      [
        parsed.type,
        parsed.serial,
        parsed.path,
        parsed.interface,
        parsed.member,
        parsed.destination,
        parsed.signature,
      ],
      [MessageType.METHOD_CALL, 9, OBJECT_PATH, INTERFACE, 'PrepareGuest', BUS_NAME, 'ssa(ss)'],
    );
    assert.deepEqual(parsed.body, call.body);
  });

  it('refuses values that do not fit the signature, without quoting them', () => {
    const cases: [string, MethodCall['body']][] = [
      ['s', [`${TOKEN}\0`]],
      ['s', [42]],
      ['ss', [TOKEN]],
      ['a(ss)', [[[TOKEN]]]],
      ['u', [-1]],
      ['y', [256]],
      ['x', [1]],
    ];
    for (const [signature, body] of cases) {
      assert.throws(
        () => marshal(signature, body),
        (err) => err instanceof MalformedMessage && !err.message.includes(TOKEN),
        signature,
      );
    }
  });
});

describe('wire client: replies as dbus-next writes them', () => {
  const verdicts = [
    ['0000:3b:02.1', 'ok', 'vdu-1 (…) 0000:3b:02.1: ok'],
    ['0000:3b:02.2', 'token-stale', `${UNICODE_NAME}: run vfbroker guest sync`],
    ['0000:3b:02.3', 'denied', ''],
  ];

  const reply = (signature: string, body: unknown[], type = MessageType.METHOD_RETURN) =>
    dbusNextBytes({
      type,
      serial: 41,
      replySerial: 2,
      sender: ':1.7',
      destination: ':1.12',
      signature,
      body,
      ...(type === MessageType.ERROR ? { errorName: 'org.vfbroker.Error.NotFound' } : {}),
    });

  const read = (bytes: Buffer) => {
    assert.equal(messageLength(bytes, 1 << 20), bytes.length);
    return decodeMessage(bytes);
  };

  it('a(sss) with several entries, multi-byte UTF-8 and an empty string', () => {
    const message = read(reply('a(sss)', [verdicts]));
    assert.deepEqual(
      [message.type, message.serial, message.replySerial, message.signature],
      [MessageType.METHOD_RETURN, 41, 2, 'a(sss)'],
    );
    assert.deepEqual(decodeBody(message), [verdicts]);
  });

  it('an empty a(sss), and an empty body', () => {
    assert.deepEqual(decodeBody(read(reply('a(sss)', [[]]))), [[]]);
    const empty = read(reply('', []));
    assert.equal(empty.signature, '');
    assert.deepEqual(decodeBody(empty), []);
  });

  it('an error reply: its name, and its (message, code, hint)', () => {
    const message = read(reply('sss', ['no prepared guest', 'NOT_FOUND', 'check it'], MessageType.ERROR));
    assert.deepEqual([message.type, message.errorName], [MessageType.ERROR, 'org.vfbroker.Error.NotFound']);
    assert.deepEqual(decodeBody(message), ['no prepared guest', 'NOT_FOUND', 'check it']);
  });

  it('a big-endian reply (the bus relays a peer in its own byte order)', () => {
    const message = read(bigEndianReply('vdu-1 ✓'));
    assert.equal(message.littleEndian, false);
    assert.deepEqual([message.replySerial, message.signature], [2, 's']);
    assert.deepEqual(decodeBody(message), ['vdu-1 ✓']);
  });

  it('messageLength waits for the first 16 bytes, then knows the whole length', () => {
    const bytes = reply('a(sss)', [verdicts]);
    for (let n = 0; n < 16; n++) assert.equal(messageLength(bytes.subarray(0, n), 1 << 20), null);
    assert.equal(messageLength(bytes.subarray(0, 16), 1 << 20), bytes.length);
  });
});

describe('wire client: malformed replies are refused with a VfbError', () => {
  const good = dbusNextBytes({
    type: MessageType.METHOD_RETURN,
    serial: 41,
    replySerial: 2,
    sender: ':1.7',
    signature: 'a(sss)',
    body: [[['0000:3b:02.1', 'ok', 'fine']]],
  });

  const refused = (why: RegExp, fn: () => unknown) =>
    assert.throws(fn, (err) => err instanceof VfbError && err.code === 'INTERNAL' && why.test(err.message));

  it('truncated at every byte', () => {
    for (let n = 16; n < good.length; n++) {
      refused(/malformed D-Bus message/, () => decodeBody(decodeMessage(good.subarray(0, n))));
    }
  });

  it('a body that does not match its signature', () => {
    const message = decodeMessage(good);
    refused(/truncated|runs past|left after/, () => decodeBody({ ...message, signature: 'a(ssss)' }));
    refused(/left after/, () => decodeBody({ ...message, signature: 'u' }));
    refused(/unsupported type "x"/, () => decodeBody({ ...message, signature: 'ax' }));
    refused(/ends inside/, () => decodeBody({ ...message, signature: 'a(ss' }));
  });

  it('a header field of the wrong type', () => {
    const bytes = Buffer.from(good);
    // The SIGNATURE field (code 8) is a variant of type g; make it claim type y.
    const at = bytes.indexOf(Buffer.from([8, 1, 0x67, 0]));
    assert.ok(at > 0);
    bytes[at + 2] = 0x79;
    refused(/header field 8 of type y instead of g/, () => decodeMessage(bytes));
  });

  it('oversized, a wrong protocol version, an unknown byte order, padding that is not NUL', () => {
    refused(/a message of \d+ bytes, more than the 64 allowed/, () => messageLength(good, 64));
    const version = Buffer.from(good);
    version[3] = 2;
    refused(/protocol version 2 instead of 1/, () => messageLength(version, 1 << 20));
    const order = Buffer.from(good);
    order[0] = 0x58;
    refused(/unknown byte order/, () => messageLength(order, 1 << 20));
    const padding = Buffer.from(good);
    // The array of structs after the body's array length is padded to 8: body starts at a multiple
    // of 8, so bytes 4..7 of the body are that padding.
    const body = decodeMessage(good).body.byteOffset - good.byteOffset;
    padding[body + 4] = 1;
    refused(/padding is not NUL/, () => decodeBody(decodeMessage(padding)));
  });

  it('invalid UTF-8 and a NUL inside a string', () => {
    const text = (bytes: number[]) =>
      Buffer.concat([Buffer.from(Uint32Array.of(bytes.length).buffer), Buffer.from(bytes), Buffer.from([0])]);
    const message = decodeMessage(good);
    refused(/not valid UTF-8/, () => decodeBody({ ...message, signature: 's', body: text([0xc3, 0x28]) }));
    refused(/holds a NUL/, () => decodeBody({ ...message, signature: 's', body: text([0x61, 0, 0x62]) }));
  });
});

/** A METHOD_RETURN in big-endian byte order with one string, written out byte by byte. */
function bigEndianReply(text: string): Buffer {
  const u32 = (n: number) => Buffer.from([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
  const value = Buffer.from(text, 'utf8');
  const body = Buffer.concat([u32(value.length), value, Buffer.from([0])]);
  // Fields: REPLY_SERIAL (5) u 2, then SIGNATURE (8) g "s", each struct at a multiple of 8.
  const fields = Buffer.concat([
    Buffer.from([5, 1, 0x75, 0]),
    u32(2),
    Buffer.from([8, 1, 0x67, 0, 1, 0x73, 0]),
  ]);
  const header = Buffer.concat([
    Buffer.from('B'),
    Buffer.from([2, 0, 1]),
    u32(body.length),
    u32(41),
    u32(fields.length),
    fields,
  ]);
  return Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8), body]);
}
