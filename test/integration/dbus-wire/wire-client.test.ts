/**
 * The hook's wire client against a real dbus-daemon (the shipped policy shape) and the real broker
 * service adapter with FixedBroker behind it: the three calls round-trip, and every failure ends
 * in the VfbError — code, message, hint — that BrokerClient (dbus-next) gives for the same call.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { PrepareDevice } from '../../../src/broker/api.js';
import { exportBroker, type ExportedBroker } from '../../../src/broker/dbus/service.js';
import { BrokerClient } from '../../../src/dbus/client.js';
import { busDriverCall, connectBus, type BusConnection } from '../../../src/dbus/connection.js';
import { BUS_NAME } from '../../../src/dbus/protocol.js';
import { WireBrokerClient } from '../../../src/dbus/wire/client.js';
import { WireConnection } from '../../../src/dbus/wire/connection.js';
import { VfbError } from '../../../src/errors.js';
import type { PciAddress } from '../../../src/pci/address.js';
import { policyText, startDbusDaemon, type TestBus } from '../../support/dbus-daemon.js';
import { captureLogs } from '../../support/log-capture.js';
import {
  FixedBroker,
  FORBIDDEN_VF,
  GUEST,
  startWorld,
  TestEvents,
  TOKEN,
  VF,
  type World,
} from '../dbus/fixture.js';

const OTHER_TOKEN = 'a3b1c5d7-0e2f-4a6b-8c9d-1e3f5a7b9c0d';
const UNICODE_NAME = 'vm-ünïcødé-日本語-🚀';
const TIMEOUTS = { timeoutMs: 5000, callTimeoutMs: 5000 };

let world: World;
const open: { close(): void }[] = [];

before(async () => {
  world = await startWorld();
});

after(async () => {
  for (const c of open.splice(0)) c.close();
  await world.stop();
  world.logs.assertNoSecrets([TOKEN, OTHER_TOKEN]);
});

async function wire(address: string, timeouts = TIMEOUTS): Promise<WireBrokerClient> {
  const c = await WireBrokerClient.connect({ address, ...timeouts });
  open.push(c);
  return c;
}

async function dbusNext(address: string, timeouts = TIMEOUTS): Promise<BrokerClient> {
  const c = await BrokerClient.connect({ address, ...timeouts });
  open.push(c);
  return c;
}

/** What `p` rejects with, as the fields a user and the exit status see. No token may be among them. */
async function failure(p: Promise<unknown>): Promise<Record<string, unknown>> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof VfbError, String(err));
  const seen = {
    code: err.code,
    message: err.message,
    hint: err.hint,
    exit: err.exitCode,
    details: err.details,
  };
  for (const token of [TOKEN, OTHER_TOKEN]) assert.ok(!JSON.stringify(seen).includes(token));
  return seen;
}

describe('wire client ↔ dbus-daemon ↔ broker service', () => {
  it('PrepareGuest, GuestStarted and ReleaseGuest round-trip, with the results BrokerClient gets', async () => {
    const devices: PrepareDevice[] = [
      { address: VF, presentedToken: TOKEN },
      { address: FORBIDDEN_VF, presentedToken: OTHER_TOKEN },
      { address: '0000:3b:02.3' as PciAddress, presentedToken: null },
    ];
    const w = await wire(world.bus.address);
    const got = await w.prepareGuest(GUEST, UNICODE_NAME, devices);
    assert.deepEqual(
      got.map((v) => [v.address, v.verdict, v.message]),
      [
        [VF, 'ok', `${UNICODE_NAME} (${GUEST}) ${VF}: ok`],
        [FORBIDDEN_VF, 'token-stale', `${UNICODE_NAME} (${GUEST}) ${FORBIDDEN_VF}: token-stale`],
        ['0000:3b:02.3', 'token-missing', `${UNICODE_NAME} (${GUEST}) 0000:3b:02.3: token-missing`],
      ],
    );
    const d = await dbusNext(world.bus.address);
    assert.deepEqual(got, await d.prepareGuest(GUEST, UNICODE_NAME, devices));
    assert.deepEqual(await w.prepareGuest(GUEST, 'vdu-1', []), []);
    assert.equal(await w.guestStarted(GUEST), undefined);
    assert.equal(await w.releaseGuest(GUEST, 'shutdown'), undefined);
  });

  it('error replies map to the same VfbError as BrokerClient gives', async () => {
    const w = await wire(world.bus.address);
    const d = await dbusNext(world.bus.address);
    const unknownGuest = '11111111-2222-4333-8444-555555555555';
    const cases: [string, (c: WireBrokerClient | BrokerClient) => Promise<unknown>, string][] = [
      ['a broker error (NotFound)', (c) => c.guestStarted(unknownGuest), 'NOT_FOUND'],
      [
        'arguments the service refuses',
        (c) => c.prepareGuest('not-a-uuid', 'vdu-1', [{ address: VF, presentedToken: TOKEN }]),
        'INVALID_ARGUMENT',
      ],
      [
        'arguments that do not fit the signature',
        (c) => c.prepareGuest(GUEST, 'vdu-1', [{ address: VF, presentedToken: `${TOKEN}\0` }]),
        'INVALID_ARGUMENT',
      ],
    ];
    for (const [name, call, code] of cases) {
      const fromWire = await failure(call(w));
      assert.equal(fromWire['code'], code, name);
      assert.deepEqual(fromWire, await failure(call(d)), name);
    }
  });

  it('no bus at the address: UNAVAILABLE with the message BrokerClient gives', async () => {
    const address = `${world.bus.address}-gone`;
    const fromWire = await failure(WireBrokerClient.connect({ address, ...TIMEOUTS }));
    assert.equal(fromWire['message'], `cannot connect to the D-Bus bus at ${address}: ENOENT`);
    assert.deepEqual(fromWire, await failure(BrokerClient.connect({ address, ...TIMEOUTS })));
  });
});

describe('wire client on a bus without the broker, or with a broker that never answers', () => {
  let bus: TestBus;
  let holder: WireConnection | undefined;

  before(async () => {
    bus = await startDbusDaemon();
  });

  after(async () => {
    holder?.close();
    await bus.stop();
  });

  it('no broker on the bus: UNAVAILABLE with the message BrokerClient gives', async () => {
    const call = (c: WireBrokerClient | BrokerClient) =>
      c.prepareGuest(GUEST, 'vdu-1', [{ address: VF, presentedToken: TOKEN }]);
    const fromWire = await failure(call(await wire(bus.address)));
    assert.deepEqual(
      [fromWire['code'], fromWire['message']],
      ['UNAVAILABLE', `the vfbroker broker is not running (${BUS_NAME} has no owner)`],
    );
    assert.deepEqual(fromWire, await failure(call(await dbusNext(bus.address))));
  });

  it('a broker that holds the name and never answers: TIMEOUT at the call deadline, as BrokerClient', async () => {
    // A wire connection owns the name: it answers no call made to it (dbus-next would answer
    // UnknownMethod), so calls reach it and wait.
    holder = await WireConnection.connect({ address: bus.address, timeoutMs: 5000 });
    await holder.call(
      {
        destination: 'org.freedesktop.DBus',
        path: '/org/freedesktop/DBus',
        interface: 'org.freedesktop.DBus',
        member: 'RequestName',
        signature: 'su',
        body: [BUS_NAME, 4],
      },
      5000,
    );
    const timeouts = { timeoutMs: 5000, callTimeoutMs: 200 };
    const call = (c: WireBrokerClient | BrokerClient) => c.guestStarted(GUEST);
    const fromWire = await failure(call(await wire(bus.address, timeouts)));
    assert.deepEqual(
      [fromWire['code'], fromWire['message']],
      ['TIMEOUT', `no reply from ${BUS_NAME} ${BUS_NAME}.GuestStarted within 200 ms`],
    );
    assert.deepEqual(fromWire, await failure(call(await dbusNext(bus.address, timeouts))));
  });
});

describe('wire client refused by the bus policy', () => {
  let bus: TestBus;
  let server: BusConnection;
  let exported: ExportedBroker | undefined;
  const logs = captureLogs('debug');

  before(async () => {
    bus = await startDbusDaemon();
    server = await connectBus({ address: bus.address });
    exported = await exportBroker(server, new FixedBroker(), new TestEvents(), { logger: logs.logger });
    // The broker owns its name; now the policy's root-only rules go to a uid that is not this
    // process's, which the bus then treats as any other user (the shipped policy, run as non-root).
    const someoneElse = process.getuid?.() === 4242 ? 4243 : 4242;
    const shipped = await policyText('shipped');
    await writeFile(bus.policyPath, shipped.replaceAll('user="root"', `user="${someoneElse}"`));
    await server.call(busDriverCall('ReloadConfig'));
  });

  after(async () => {
    await exported?.close();
    server.close();
    await bus.stop();
    logs.assertNoSecrets([TOKEN]);
  });

  it('a caller the policy keeps from PrepareGuest: DENIED, as BrokerClient', async () => {
    const call = (c: WireBrokerClient | BrokerClient) =>
      c.prepareGuest(GUEST, 'vdu-1', [{ address: VF, presentedToken: TOKEN }]);
    const fromWire = await failure(call(await wire(bus.address)));
    assert.deepEqual(
      [fromWire['code'], fromWire['message']],
      ['DENIED', 'the D-Bus policy does not let this user call PrepareGuest'],
    );
    assert.deepEqual(fromWire, await failure(call(await dbusNext(bus.address))));
  });
});
