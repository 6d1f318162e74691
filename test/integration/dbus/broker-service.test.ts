/**
 * The broker's D-Bus face against a real dbus-daemon: every method through BrokerClient, the error
 * replies as any D-Bus client sees them, argument checks, and the caller's identity.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { DBusError, Message, Variant } from 'dbus-next';
import type { Caller, PrepareDevice } from '../../../src/broker/api.js';
import { parseProcStatus, unitFromCgroup } from '../../../src/broker/dbus/proc.js';
import { MAX_DEVICES, MAX_TEXT } from '../../../src/broker/dbus/validate.js';
import type { BrokerClient } from '../../../src/dbus/client.js';
import { connectBus, type BusConnection } from '../../../src/dbus/connection.js';
import { BUS_NAME, INTERFACE, METHODS, OBJECT_PATH, SIGNALS } from '../../../src/dbus/protocol.js';
import type { PciAddress } from '../../../src/pci/address.js';
import { assertNoSecretsIn } from '../../support/log-capture.js';
import {
  BUG_TEXT,
  BUGGY_PF,
  FORBIDDEN_VF,
  GUEST,
  PF,
  PFS,
  rejection,
  startWorld,
  TOKEN,
  VF,
  type World,
} from './fixture.js';

const OTHER_TOKEN = 'a3b1c5d7-0e2f-4a6b-8c9d-1e3f5a7b9c0d';

let world: World;
let client: BrokerClient;
let raw: BusConnection;

/** A call as any D-Bus client makes it, to see the reply on the wire. */
async function rawCall(
  member: string,
  signature: string,
  body: unknown[],
  iface: string | undefined = INTERFACE,
) {
  return raw.call(
    new Message({
      destination: BUS_NAME,
      path: OBJECT_PATH,
      ...(iface === undefined ? {} : { interface: iface }),
      member,
      signature,
      body,
    }),
  );
}

async function rawError(
  member: string,
  signature: string,
  body: unknown[],
  iface?: string,
): Promise<DBusError> {
  try {
    await rawCall(member, signature, body, iface);
  } catch (err) {
    if (err instanceof DBusError) return err;
    throw err;
  }
  throw new Error(`${member} succeeded`);
}

before(async () => {
  world = await startWorld();
  client = await world.client();
  raw = await connectBus({ address: world.bus.address });
});

after(async () => {
  raw.close();
  await world.stop();
  // Nothing the broker logged, for any test in this file, carries the token.
  world.logs.assertNoSecrets([TOKEN, OTHER_TOKEN]);
});

describe('methods round-trip through BrokerClient', () => {
  it('PrepareGuest: devices in, one (address, verdict, message) per device out', async () => {
    const devices: PrepareDevice[] = [
      { address: VF, presentedToken: TOKEN },
      { address: FORBIDDEN_VF, presentedToken: null },
      { address: '0000:3b:02.3' as PciAddress, presentedToken: OTHER_TOKEN },
    ];
    const verdicts = await client.prepareGuest(GUEST, 'vm-one', devices);
    assert.deepEqual(verdicts, [
      { address: VF, verdict: 'ok', message: `vm-one (${GUEST}) ${VF}: ok` },
      {
        address: FORBIDDEN_VF,
        verdict: 'token-missing',
        message: `vm-one (${GUEST}) ${FORBIDDEN_VF}: token-missing`,
      },
      {
        address: '0000:3b:02.3',
        verdict: 'token-stale',
        message: `vm-one (${GUEST}) 0000:3b:02.3: token-stale`,
      },
    ]);
  });

  it('PrepareGuest: UUIDs in either case reach the broker in lower case', async () => {
    const [v] = await client.prepareGuest(GUEST.toUpperCase(), 'vm', [
      { address: VF, presentedToken: TOKEN.toUpperCase() },
    ]);
    assert.equal(v?.verdict, 'ok');
    assert.equal(v?.message, `vm (${GUEST}) ${VF}: ok`);
  });

  it('PrepareGuest with no devices answers an empty list', async () => {
    assert.deepEqual(await client.prepareGuest(GUEST, 'vm', []), []);
  });

  it('GuestStarted and ReleaseGuest answer nothing on success', async () => {
    assert.equal(await client.guestStarted(GUEST), undefined);
    assert.equal(await client.releaseGuest(GUEST, 'from snapshot'), undefined);
    assert.equal(await client.releaseGuest(GUEST, ''), undefined);
  });

  it('GetToken returns the token', async () => {
    assert.equal(await client.getToken(VF), TOKEN);
  });

  it('Rotate returns the rotation state', async () => {
    assert.equal(await client.rotate(PF), 'draining');
  });

  it('ListPfs returns every field with its type', async () => {
    assert.deepEqual(await client.listPfs(), PFS);
  });

  it('ListPfs carries fixed D-Bus types per key', async () => {
    const reply = await rawCall('ListPfs', '', []);
    assert.equal(reply.signature, 'aa{sv}');
    const [first] = reply.body[0] as Record<string, Variant>[];
    const types = Object.fromEntries(Object.entries(first ?? {}).map(([k, v]) => [k, v.signature]));
    assert.deepEqual(types, {
      address: 's',
      plugin: 's',
      state: 's',
      numVfs: 'u',
      needsToken: 'b',
      generation: 'u',
      rotationMode: 's',
      leases: 'u',
      activeSince: 's',
      pendingGeneration: 'u',
      rotationStep: 's',
      waitingFor: 's',
      drainDeadline: 's',
    });
  });

  it('Status returns the broker status', async () => {
    const status = await client.status();
    assert.equal(status.version, '0.0.0-test');
    assert.equal(status.pfs, 2);
    assert.equal(status.storeReachable, true);
    assert.equal(status.uptimeSeconds, 42);
  });

  it('SetNumVfs answers nothing on success', async () => {
    assert.equal(await client.setNumVfs(PF, 4), undefined);
  });

  it('signals: TokenRotated and GuestRefused reach a subscribed client', async () => {
    const seen: unknown[] = [];
    let done!: () => void;
    const both = new Promise<void>((resolve) => (done = resolve));
    const unsubscribe = await client.subscribe({
      tokenRotated: (pf, generation) => seen.push(['TokenRotated', pf, generation]),
      guestRefused: (uuid, address, verdict) => {
        seen.push(['GuestRefused', uuid, address, verdict]);
        done();
      },
    });
    world.events.fire((l) => l.tokenRotated(PF, 4));
    world.events.fire((l) => l.guestRefused(GUEST, VF, 'denied'));
    await both;
    await unsubscribe();
    assert.deepEqual(seen, [
      ['TokenRotated', PF, 4],
      ['GuestRefused', GUEST, VF, 'denied'],
    ]);
  });
});

describe('errors arrive as org.vfbroker.Error.* with one line and no stack', () => {
  it('a VfbError from the broker keeps its name, message, code and hint', async () => {
    const err = await rejection(client.guestStarted('11111111-2222-4333-8444-555555555555'));
    assert.equal(err.code, 'NOT_FOUND');
    assert.equal(err.message, 'no prepared guest 11111111-2222-4333-8444-555555555555');

    const denied = await rejection(client.getToken(FORBIDDEN_VF));
    assert.equal(denied.code, 'DENIED');
    assert.equal(denied.message, `the policy grants this caller no token for ${FORBIDDEN_VF}`);
  });

  it('codes that share a D-Bus name come back exact (KERNEL_REFUSED, not just Failed)', async () => {
    const err = await rejection(client.setNumVfs(PF, 9));
    assert.equal(err.code, 'KERNEL_REFUSED');
    assert.equal(err.exitCode, 71);
    assert.equal(
      err.message,
      `more VFs than the PF offers (ERANGE on /sys/bus/pci/devices/${PF}/sriov_numvfs)`,
    );
  });

  it('on the wire: the error name and a one-line text, as busctl would show it', async () => {
    const err = await rawError('GuestStarted', 's', ['11111111-2222-4333-8444-555555555555']);
    assert.equal(err.type, 'org.vfbroker.Error.NotFound');
    assert.equal(err.text, 'no prepared guest 11111111-2222-4333-8444-555555555555');
    assert.deepEqual((err.reply as Message).body.slice(1), [
      'NOT_FOUND',
      'check the name or address; `vfbroker pf status` lists what vfbroker knows',
    ]);
  });

  it('a plain Error thrown by the broker becomes Internal "internal error"; the detail is only logged', async () => {
    const err = await rawError('Rotate', 's', [BUGGY_PF]);
    assert.equal(err.type, 'org.vfbroker.Error.Internal');
    assert.equal(err.text, 'internal error');
    assert.ok(!JSON.stringify((err.reply as Message).body).includes(BUG_TEXT));
    assert.ok(!JSON.stringify((err.reply as Message).body).includes(' at '), 'no stack frames');

    const viaClient = await rejection(client.rotate(BUGGY_PF));
    assert.equal(viaClient.code, 'INTERNAL');
    assert.equal(viaClient.message, 'internal error');
    assert.ok(
      world.logs.lines.some((l) => l.includes(BUG_TEXT)),
      'the detail is in the broker log',
    );
  });

  it('every error text is one line', async () => {
    const errs = await Promise.all([
      rawError('GetToken', 's', ['0000:3b:02.1\nx']),
      rawError('PrepareGuest', 'ssa(ss)', ['x', 'vm', []]),
      rawError('SetNumVfs', 'su', [PF, 9]),
      rawError('Rotate', 's', [BUGGY_PF]),
    ]);
    for (const e of errs) assert.ok(!e.text.includes('\n'), `${e.type}: ${JSON.stringify(e.text)}`);
  });
});

describe('arguments are checked at the boundary → InvalidArgument', () => {
  const invalid = async (p: Promise<unknown>, message: string | RegExp) => {
    const err = await rejection(p);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return err;
  };

  it('a guest UUID that is not a UUID', async () => {
    await invalid(
      client.guestStarted('not-a-uuid'),
      'the guest UUID is not a UUID (expected 8-4-4-4-12 hex digits, as libvirt prints it)',
    );
    await invalid(client.prepareGuest(`${GUEST}x`, 'vm', []), /^the guest UUID is not a UUID/);
  });

  it('a PCI address not in canonical form, or not one at all', async () => {
    await invalid(
      client.getToken('0000:3B:02.1' as PciAddress),
      'VF address: invalid PCI address "0000:3B:02.1": not in canonical form (expected 0000:3b:02.1)',
    );
    await invalid(client.rotate('../../etc' as PciAddress), /^PF address: invalid PCI address/);
    await invalid(
      client.prepareGuest(GUEST, 'vm', [{ address: 'x' as PciAddress, presentedToken: null }]),
      /^device 0 address: invalid PCI address "x"/,
    );
  });

  it('a token given where an address belongs is refused without being repeated', async () => {
    const err = await invalid(
      client.getToken(TOKEN as PciAddress),
      'the VF address is not a PCI address (36 characters; expected DDDD:BB:DD.F)',
    );
    assertNoSecretsIn(err.message, [TOKEN], 'the error');
  });

  it('a presented token that is neither "" nor a UUID, without repeating it', async () => {
    const almost = TOKEN.slice(0, 35) + 'g';
    const err = await invalid(
      client.prepareGuest(GUEST, 'vm', [{ address: VF, presentedToken: almost }]),
      'device 0: the presented vf-token is not a UUID',
    );
    assert.ok(!err.message.includes(almost.slice(0, 20)));
  });

  it('10,000 devices', async () => {
    const devices = Array.from({ length: 10_000 }, () => ({ address: VF, presentedToken: null }));
    await invalid(client.prepareGuest(GUEST, 'vm', devices), `more than ${MAX_DEVICES} devices (10000)`);
  });

  it('a huge string, and control characters in free text', async () => {
    await invalid(
      client.prepareGuest(GUEST, 'x'.repeat(1 << 20), []),
      `the guest name is longer than ${MAX_TEXT} characters`,
    );
    await invalid(client.releaseGuest(GUEST, 'y'.repeat(MAX_TEXT + 1)), /^the release reason is longer than/);
    await invalid(
      client.prepareGuest(GUEST, 'vm\nFAKE LOG LINE', []),
      'the guest name contains control characters',
    );
    await invalid(client.prepareGuest(GUEST, '', []), 'the guest name is empty');
  });

  it('a VF count above what SR-IOV can express', async () => {
    await invalid(client.setNumVfs(PF, 70_000), 'the VF count must be a whole number from 0 to 65535');
  });

  it('a call with the wrong signature', async () => {
    const err = await rawError('GetToken', 'u', [1]);
    assert.equal(err.type, 'org.vfbroker.Error.InvalidArgument');
    assert.equal(err.text, 'GetToken takes (s), not (u)');
  });
});

describe('the caller as the bus vouches for it', () => {
  it('uid, pid, gids and unit of the calling process reach the broker', async () => {
    const caller = JSON.parse((await client.status()).hostId) as Caller;
    const status = parseProcStatus(await readFile('/proc/self/status', 'utf8'));
    assert.equal(caller.uid, process.getuid?.());
    assert.equal(caller.pid, process.pid);
    assert.deepEqual([...caller.gids].sort(), [...(status?.gids ?? [])].sort());
    assert.equal(caller.unit, unitFromCgroup(await readFile('/proc/self/cgroup', 'utf8')));
    assert.equal(caller.busName, client.connection.uniqueName);
  });

  it('each connection is identified as itself', async () => {
    const other = await world.client();
    const a = JSON.parse((await client.status()).hostId) as Caller;
    const b = JSON.parse((await other.status()).hostId) as Caller;
    assert.notEqual(a.busName, b.busName);
    assert.equal(b.busName, other.connection.uniqueName);
  });
});

describe('the rest of the object', () => {
  it('Introspect lists exactly the methods and signals of the protocol', async () => {
    const reply = await rawCall('Introspect', '', [], 'org.freedesktop.DBus.Introspectable');
    const xml = reply.body[0] as string;
    const iface = xml.slice(xml.indexOf(`<interface name="${INTERFACE}">`), xml.indexOf('</interface>'));
    assert.deepEqual(
      [...iface.matchAll(/<method name="(\w+)">/g)].map((m) => m[1]),
      Object.keys(METHODS),
    );
    assert.deepEqual(
      [...iface.matchAll(/<signal name="(\w+)">/g)].map((m) => m[1]),
      Object.keys(SIGNALS),
    );
    assert.match(iface, /<arg name="devices" type="a\(ss\)" direction="in"\/>/);
  });

  it('Introspect on / leads to the object', async () => {
    const reply = await raw.call(
      new Message({
        destination: BUS_NAME,
        path: '/org/vfbroker',
        interface: 'org.freedesktop.DBus.Introspectable',
        member: 'Introspect',
      }),
    );
    assert.match(reply.body[0] as string, /<node name="Broker1"\/>/);
  });

  it('Properties: none to get, none to set', async () => {
    const all = await rawCall('GetAll', 's', [INTERFACE], 'org.freedesktop.DBus.Properties');
    assert.deepEqual(all.body, [{}]);
    const err = await rawError(
      'Set',
      'ssv',
      [INTERFACE, 'Anything', new Variant('s', 'x')],
      'org.freedesktop.DBus.Properties',
    );
    assert.equal(err.type, 'org.freedesktop.DBus.Error.UnknownProperty');
  });

  it('Peer.Ping answers', async () => {
    const reply = await rawCall('Ping', '', [], 'org.freedesktop.DBus.Peer');
    assert.deepEqual(reply.body, []);
  });

  it('a method called without an interface is found by its name', async () => {
    const reply = await rawCall('GetToken', 's', [VF], undefined);
    assert.deepEqual(reply.body, [TOKEN]);
  });

  it('unknown members, interfaces and paths get the standard errors', async () => {
    assert.equal((await rawError('Frobnicate', '', [])).type, 'org.freedesktop.DBus.Error.UnknownMethod');
    assert.equal(
      (await rawError('Frobnicate', '', [], 'org.example.Nope')).type,
      'org.freedesktop.DBus.Error.UnknownInterface',
    );
    const err = await raw
      .call(
        new Message({ destination: BUS_NAME, path: '/elsewhere', interface: INTERFACE, member: 'Status' }),
      )
      .then(
        () => null,
        (e: unknown) => e,
      );
    assert.ok(err instanceof DBusError);
    assert.equal(err.type, 'org.freedesktop.DBus.Error.UnknownObject');
  });
});
