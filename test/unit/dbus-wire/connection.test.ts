/**
 * The wire client against a scripted bus (fake-bus.ts): the handshake pipelined with the first
 * call, replies split anywhere, and every way a bus or a broker can answer badly, each ending in
 * the VfbError BrokerClient would give, with no token in it.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { MessageType } from 'dbus-next';
import type { PrepareDevice } from '../../../src/broker/api.js';
import { BUS_NAME, INTERFACE, OBJECT_PATH } from '../../../src/dbus/protocol.js';
import { WireBrokerClient } from '../../../src/dbus/wire/client.js';
import { MAX_MESSAGE_BYTES } from '../../../src/dbus/wire/connection.js';
import { VfbError, type ErrorCode } from '../../../src/errors.js';
import type { PciAddress } from '../../../src/pci/address.js';
import { dbusNextBytes } from './dbus-next-bytes.js';
import { replyTo, startFakeBus, type FakeBus, type FakeBusScript } from './fake-bus.js';

const TOKEN = '6f1c2a4e-8d3b-4f7a-9c1e-2b5d7e9f0a13';
const GUEST = '0d5a8a41-6f5c-4c7e-8a9b-3e2f1d0c9b8a';
const VF = '0000:3b:02.1' as PciAddress;
const DEVICES: PrepareDevice[] = [{ address: VF, presentedToken: TOKEN }];
const PREPARE = `${BUS_NAME} ${INTERFACE}.PrepareGuest`;

let bus: FakeBus | undefined;
const clients: WireBrokerClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await bus?.stop();
  bus = undefined;
});

async function client(script: FakeBusScript, timeoutMs = 2000): Promise<WireBrokerClient> {
  bus = await startFakeBus(script);
  const c = await WireBrokerClient.connect({ address: bus.address, timeoutMs, callTimeoutMs: timeoutMs });
  clients.push(c);
  return c;
}

/** The VfbError `p` rejects with, checked to carry no token anywhere a user or a log could see. */
async function rejection(
  p: Promise<unknown>,
  code: ErrorCode,
  message: string | (() => string),
): Promise<VfbError> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof VfbError, String(err));
  assert.deepEqual([err.code, err.message], [code, typeof message === 'string' ? message : message()]);
  assert.ok(!JSON.stringify([err.message, err.hint, err.details]).includes(TOKEN));
  return err;
}

const verdicts = (call: { body: unknown[] }, verdict = 'ok') =>
  (call.body[2] as [string, string][]).map(([address]) => [address, verdict, `${address}: ${verdict}`]);

describe('wire client connection', () => {
  it('sends AUTH, BEGIN, Hello and the call before hearing back, and gets the reply past NameAcquired', async () => {
    const c = await client({ answer: (call) => [replyTo(call, 'a(sss)', [verdicts(call)])] });
    const got = await c.prepareGuest(GUEST, 'vdu-1', DEVICES);
    assert.deepEqual(got, [{ address: VF, verdict: 'ok', message: `${VF}: ok` }]);
    const uid = Buffer.from(String(process.getuid?.() ?? 0)).toString('hex');
    assert.equal(bus?.authLine(), `AUTH EXTERNAL ${uid}`);
    const [call] = bus?.calls ?? [];
    assert.deepEqual(
      [call?.destination, call?.path, call?.interface, call?.member, call?.signature, call?.body],
      [BUS_NAME, OBJECT_PATH, INTERFACE, 'PrepareGuest', 'ssa(ss)', [GUEST, 'vdu-1', [[VF, TOKEN]]]],
    );
  });

  it('later calls reuse the connection; GuestStarted and ReleaseGuest take an empty reply', async () => {
    const c = await client({ answer: (call) => [replyTo(call, '', [])] });
    assert.equal(await c.guestStarted(GUEST), undefined);
    assert.equal(await c.releaseGuest(GUEST, 'shutdown'), undefined);
    assert.deepEqual(
      bus?.calls.map((m) => [m.member, m.body]),
      [
        ['GuestStarted', [GUEST]],
        ['ReleaseGuest', [GUEST, 'shutdown']],
      ],
    );
  });

  it('reads a reply that arrives one byte at a time', async () => {
    const c = await client({
      byteByByte: true,
      answer: (call) => [replyTo(call, 'a(sss)', [verdicts(call, 'token-stale')])],
    });
    const [v] = await c.prepareGuest(GUEST, 'vdu-1', DEVICES);
    assert.equal(v?.verdict, 'token-stale');
  });

  it('an error reply becomes the VfbError it names, with its message and hint', async () => {
    const c = await client({
      answer: (call) => [
        replyTo(
          call,
          'sss',
          ['no prepared guest x', 'NOT_FOUND', 'start it first'],
          'org.vfbroker.Error.NotFound',
        ),
      ],
    });
    const err = await rejection(c.guestStarted(GUEST), 'NOT_FOUND', 'no prepared guest x');
    assert.equal(err.hint, 'start it first');
  });

  it('a bus that refuses EXTERNAL: UNAVAILABLE, authentication failed', async () => {
    const c = await client({ authReply: 'REJECTED EXTERNAL' });
    await rejection(
      c.prepareGuest(GUEST, 'vdu-1', DEVICES),
      'UNAVAILABLE',
      `cannot connect to the D-Bus bus at ${bus?.address}: authentication failed`,
    );
  });

  it('a bus that refuses Hello: the call fails with the mapped bus error', async () => {
    const c = await client({
      hello: (hello) => [replyTo(hello, 's', ['too many'], 'org.freedesktop.DBus.Error.LimitsExceeded')],
    });
    await rejection(
      c.prepareGuest(GUEST, 'vdu-1', DEVICES),
      'BUSY',
      'the bus refused Hello: too many calls in flight (LimitsExceeded)',
    );
  });

  it('a bus that never answers the handshake: TIMEOUT at the connect deadline, as the dbus-next client says it', async () => {
    bus = await startFakeBus({ silent: true });
    const c = await WireBrokerClient.connect({ address: bus.address, timeoutMs: 50, callTimeoutMs: 5000 });
    clients.push(c);
    await rejection(
      c.prepareGuest(GUEST, 'vdu-1', DEVICES),
      'TIMEOUT',
      `no answer from the D-Bus bus at ${bus.address} within 50 ms`,
    );
  });

  it('a broker that never answers: TIMEOUT at the call deadline', async () => {
    const c = await client({}, 100);
    await rejection(
      c.prepareGuest(GUEST, 'vdu-1', DEVICES),
      'TIMEOUT',
      `no reply from ${PREPARE} within 100 ms`,
    );
  });

  it('a reply of another signature, a malformed body, an unknown verdict: INTERNAL, malformed reply', async () => {
    const cases: [unknown[], string, string][] = [
      [['ok'], 's', 'signature (s) instead of (a(sss))'],
      [[[[VF, 'ok']]], 'a(ss)', 'signature (a(ss)) instead of (a(sss))'],
      [[[[VF, 'great', 'x']]], 'a(sss)', 'unknown verdict'],
      [[[['3b:02.1', 'ok', 'x']]], 'a(sss)', 'an address is not a PCI address'],
    ];
    for (const [body, signature, why] of cases) {
      const c = await client({ answer: (call) => [replyTo(call, signature, body)] });
      await rejection(
        c.prepareGuest(GUEST, 'vdu-1', DEVICES),
        'INTERNAL',
        `malformed reply from the broker to PrepareGuest: ${why}`,
      );
      c.close();
      await bus?.stop();
      bus = undefined;
    }
  });

  it('a reply body that is not valid UTF-8: INTERNAL, malformed reply', async () => {
    const c = await client({
      answer: (call) => {
        const bytes = replyTo(call, 'a(sss)', [[[VF, 'ok', 'é']]]);
        // 'é' is C3 A9 and the last two bytes before the struct's end are it and its NUL.
        bytes[bytes.length - 3] = 0x28;
        return [bytes];
      },
    });
    await rejection(
      c.prepareGuest(GUEST, 'vdu-1', DEVICES),
      'INTERNAL',
      'malformed reply from the broker to PrepareGuest: a string is not valid UTF-8',
    );
  });

  it('an oversized message: the connection is dropped before buffering it', async () => {
    let declared = 0;
    const c = await client({
      answer: (call) => {
        const bytes = replyTo(call, 's', ['x']);
        const fields = bytes.readUInt32LE(12);
        bytes.writeUInt32LE(MAX_MESSAGE_BYTES, 4);
        declared = 16 + fields + ((8 - (fields % 8)) % 8) + MAX_MESSAGE_BYTES;
        return [bytes.subarray(0, 16)];
      },
    });
    await rejection(
      c.prepareGuest(GUEST, 'vdu-1', DEVICES),
      'INTERNAL',
      () =>
        `malformed message from the D-Bus bus at ${bus?.address}: a message of ${declared} bytes, more than the ${MAX_MESSAGE_BYTES} allowed`,
    );
  });

  it('a truncated reply, then the bus goes away: UNAVAILABLE, closed before the answer', async () => {
    const c = await client({
      answer: (call) =>
        call.member === 'GuestStarted'
          ? [replyTo(call, '', [])]
          : [replyTo(call, 'a(sss)', [verdicts(call)]).subarray(0, 30)],
    });
    await c.guestStarted(GUEST); // the handshake is over: a close now is one after connecting
    const outcome = rejection(
      c.prepareGuest(GUEST, 'vdu-1', DEVICES),
      'UNAVAILABLE',
      `the D-Bus connection closed before ${PREPARE} answered`,
    );
    await waitFor(() => (bus?.calls.length ?? 0) > 1);
    await bus?.stop();
    bus = undefined;
    await outcome;
  });

  it('replies to calls we did not make and method calls to us are passed over', async () => {
    const c = await client({
      answer: (call) => [
        replyTo({ ...call, serial: call.serial + 50 }, 's', ['not yours']),
        dbusNextBytes({
          type: MessageType.METHOD_CALL,
          serial: 77,
          sender: ':1.9',
          destination: ':1.42',
          path: '/',
          interface: 'org.example.Probe',
          member: 'Poke',
        }),
        replyTo(call, 'a(sss)', [verdicts(call)]),
      ],
    });
    const [v] = await c.prepareGuest(GUEST, 'vdu-1', DEVICES);
    assert.equal(v?.verdict, 'ok');
  });

  it('arguments that do not fit: INVALID_ARGUMENT, nothing sent, the value not quoted', async () => {
    const c = await client({ answer: (call) => [replyTo(call, '', [])] });
    await rejection(
      c.prepareGuest(GUEST, 'vdu-1', [{ address: VF, presentedToken: `${TOKEN}\0` }]),
      'INVALID_ARGUMENT',
      `the arguments of ${PREPARE} do not fit its signature`,
    );
    assert.equal(await c.guestStarted(GUEST), undefined);
    assert.deepEqual(
      bus?.calls.map((m) => m.member),
      ['GuestStarted'],
    );
  });

  it('no socket at the address: UNAVAILABLE, ENOENT; an address that is not a unix path is refused', async () => {
    await rejection(
      WireBrokerClient.connect({
        address: 'unix:path=/nonexistent/bus',
        timeoutMs: 1000,
        callTimeoutMs: 1000,
      }),
      'UNAVAILABLE',
      'cannot connect to the D-Bus bus at unix:path=/nonexistent/bus: ENOENT',
    );
    await rejection(
      WireBrokerClient.connect({
        address: 'tcp:host=localhost,port=1',
        timeoutMs: 1000,
        callTimeoutMs: 1000,
      }),
      'UNAVAILABLE',
      'unsupported D-Bus address "tcp:host=localhost,port=1"',
    );
  });

  it('close() ends a call still waiting, and later calls fail at once', async () => {
    const c = await client({
      answer: (call) => (call.member === 'GuestStarted' ? [replyTo(call, '', [])] : []),
    });
    await c.guestStarted(GUEST);
    const outcome = rejection(
      c.prepareGuest(GUEST, 'vdu-1', DEVICES),
      'UNAVAILABLE',
      `the D-Bus connection closed before ${PREPARE} answered`,
    );
    await waitFor(() => (bus?.calls.length ?? 0) > 1);
    c.close();
    await outcome;
    await rejection(
      c.guestStarted(GUEST),
      'UNAVAILABLE',
      `the D-Bus connection closed before ${BUS_NAME} ${INTERFACE}.GuestStarted answered`,
    );
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
