/**
 * The broker's D-Bus face under load and when things go away: floods, saturation, hung handlers,
 * a broker that is gone or leaves mid-call, a bus that is not there, a second broker, shutdown.
 */
import assert from 'node:assert/strict';
import { Message, MessageType } from 'dbus-next';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Caller } from '../../../src/broker/api.js';
import { exportBroker } from '../../../src/broker/dbus/service.js';
import { BrokerClient } from '../../../src/dbus/client.js';
import { busDriverCall, connectBus } from '../../../src/dbus/connection.js';
import { startDbusDaemon, type TestBus } from '../../support/dbus-daemon.js';
import { captureLogs } from '../../support/log-capture.js';
import {
  FixedBroker,
  HANGING_PF,
  rejection,
  startWorld,
  TestEvents,
  TOKEN,
  VF,
  type World,
} from './fixture.js';

describe('a flood of calls', () => {
  let world: World;
  before(async () => (world = await startWorld()));
  after(async () => {
    await world.stop();
    world.logs.assertNoSecrets([TOKEN]);
  });

  it('1,000 concurrent calls from 4 connections are all answered, correctly', async () => {
    const clients = await Promise.all([1, 2, 3, 4].map(() => world.client()));
    const calls = Array.from({ length: 1000 }, (_, i) => {
      const c = clients[i % clients.length] as BrokerClient;
      return i % 2 === 0 ? c.getToken(VF) : c.status().then((s) => s.version);
    });
    const results = await Promise.allSettled(calls);
    const rejected = results.filter((r) => r.status === 'rejected');
    assert.deepEqual(rejected, [], 'no call failed');
    results.forEach((r, i) =>
      assert.deepEqual(r, { status: 'fulfilled', value: i % 2 === 0 ? TOKEN : '0.0.0-test' }),
    );
  });
});

describe('bounded concurrency', () => {
  let world: World;
  before(async () => (world = await startWorld({ maxInFlight: 3 })));
  after(() => world.stop());

  it('calls beyond maxInFlight are answered Busy at once; the others complete', async () => {
    const client = await world.client();
    const hung = [1, 2, 3].map(() => client.setNumVfs(HANGING_PF, 1));
    await world.broker.whenHanging(3);
    const busy = await rejection(client.setNumVfs(HANGING_PF, 1));
    assert.equal(busy.code, 'BUSY');
    assert.equal(busy.message, 'the broker is handling 3 calls; retry shortly');
    world.broker.release();
    assert.deepEqual(await Promise.all(hung), [undefined, undefined, undefined]);
    assert.equal(await client.getToken(VF), TOKEN, 'served again once the calls finished');
  });
});

describe('deadlines and absence', () => {
  let world: World;
  before(async () => (world = await startWorld()));
  after(() => world.stop());

  it("the client's deadline fires against a hung handler: TIMEOUT", async () => {
    const client = await world.client({ callTimeoutMs: 100 });
    const err = await rejection(client.setNumVfs(HANGING_PF, 1));
    assert.equal(err.code, 'TIMEOUT');
    assert.equal(
      err.message,
      'no reply from org.vfbroker.Broker1 org.vfbroker.Broker1.SetNumVfs within 100 ms',
    );
    world.broker.release();
    assert.equal(await client.getToken(VF), TOKEN, 'the connection is still usable');
  });

  it('no broker on the bus: UNAVAILABLE', async () => {
    const bus = await startDbusDaemon();
    try {
      const client = await BrokerClient.connect({ address: bus.address });
      const err = await rejection(client.status());
      client.close();
      assert.equal(err.code, 'UNAVAILABLE');
      assert.equal(err.message, 'the vfbroker broker is not running (org.vfbroker.Broker1 has no owner)');
    } finally {
      await bus.stop();
    }
  });

  it('no bus at the address: UNAVAILABLE', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfbroker-nobus-'));
    try {
      const err = await rejection(BrokerClient.connect({ address: `unix:path=${dir}/missing` }));
      assert.equal(err.code, 'UNAVAILABLE');
      assert.equal(err.message, `cannot connect to the D-Bus bus at unix:path=${dir}/missing: ENOENT`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the broker leaves the bus while a call is in flight: UNAVAILABLE', async () => {
    const bus = await startDbusDaemon();
    const conn = await connectBus({ address: bus.address });
    const broker = new FixedBroker();
    await exportBroker(conn, broker, new TestEvents(), { logger: world.logs.logger });
    const client = await BrokerClient.connect({ address: bus.address });
    try {
      const pending = rejection(client.setNumVfs(HANGING_PF, 1));
      await broker.whenHanging(1);
      conn.close();
      const err = await pending;
      assert.equal(err.code, 'UNAVAILABLE');
      assert.equal(err.message, 'the broker did not answer SetNumVfs (NoReply)');
    } finally {
      client.close();
      await bus.stop();
    }
  });

  it('the bus goes away under a client: pending calls end UNAVAILABLE, later ones too', async () => {
    const bus = await startDbusDaemon();
    const conn = await connectBus({ address: bus.address });
    const broker = new FixedBroker();
    await exportBroker(conn, broker, new TestEvents(), { logger: world.logs.logger });
    const client = await BrokerClient.connect({ address: bus.address });
    const pending = rejection(client.setNumVfs(HANGING_PF, 1));
    await broker.whenHanging(1);
    await bus.stop();
    const err = await pending;
    assert.equal(err.code, 'UNAVAILABLE');
    assert.match(
      err.message,
      /^the D-Bus connection closed before org\.vfbroker\.Broker1 org\.vfbroker\.Broker1\.SetNumVfs answered$/,
    );
    assert.equal((await rejection(client.status())).code, 'UNAVAILABLE');
    assert.equal(conn.closed, true);
  });
});

describe('writes', () => {
  // A lost message shows as a wait for it that never ends: the timeout makes that a failure.
  it(
    'messages sent in one turn, then close(), all reach the peer, in order',
    { timeout: 10_000 },
    async () => {
      const bus = await startDbusDaemon();
      try {
        const listener = await connectBus({ address: bus.address });
        const sender = await connectBus({ address: bus.address });
        const got: string[] = [];
        const all = new Promise<void>((resolve) =>
          listener.bus.on('message', (msg: Message) => {
            if (msg.type === MessageType.SIGNAL && msg.member === 'Tick') got.push(String(msg.body[0]));
            if (got.length === 50) resolve();
          }),
        );
        await listener.call(busDriverCall('AddMatch', 's', ["type='signal',member='Tick'"]));
        const sent = Array.from({ length: 50 }, (_, i) => `tick ${i}`);
        for (const text of sent)
          sender.send(Message.newSignal('/test', 'org.vfbroker.Test', 'Tick', 's', [text]));
        sender.close();
        await all;
        listener.close();
        assert.deepEqual(got, sent);
      } finally {
        await bus.stop();
      }
    },
  );
});

describe('owning the name', () => {
  let bus: TestBus;
  before(async () => (bus = await startDbusDaemon()));
  after(() => bus.stop());

  it('a second broker is refused while the first holds the name, and served after it closed', async () => {
    const world = await startWorldOn(bus);
    const second = await connectBus({ address: bus.address });
    const events = new TestEvents();
    const err = await rejection(
      exportBroker(second, new FixedBroker(), events, { logger: world.logs.logger }),
    );
    assert.equal(err.code, 'BUSY');
    assert.equal(err.message, 'another process already owns org.vfbroker.Broker1');
    assert.equal(events.subscribers, 0, 'the refused service left nothing subscribed');

    await world.exported.close();
    assert.equal(world.events.subscribers, 0);
    const client = await BrokerClient.connect({ address: bus.address });
    assert.equal((await rejection(client.status())).code, 'UNAVAILABLE', 'nobody serves after close()');
    const exported = await exportBroker(second, new FixedBroker(), events, { logger: world.logs.logger });
    assert.equal(await client.getToken(VF), TOKEN, 'the second broker now serves');
    client.close();
    await exported.close();
    second.close();
    world.connection.close();
  });

  it('close() lets calls in flight finish and answers new ones Unavailable meanwhile', async () => {
    const world = await startWorldOn(bus);
    const client = await BrokerClient.connect({ address: bus.address });
    const inFlight = client.setNumVfs(HANGING_PF, 1);
    await world.broker.whenHanging(1);
    const closing = world.exported.close();
    // The name is gone, so a new call through it meets no broker.
    assert.equal((await rejection(client.status())).code, 'UNAVAILABLE');
    world.broker.release();
    await closing;
    assert.equal(await inFlight, undefined, 'the call in flight was answered');
    client.close();
    world.connection.close();
  });
});

describe('/proc that no longer matches the bus', () => {
  it('a pid whose /proc entry shows another uid gives no groups and no unit', async () => {
    const proc = await mkdtemp(join(tmpdir(), 'vfbroker-proc-'));
    const uid = process.getuid?.() ?? 0;
    await mkdir(join(proc, String(process.pid)));
    await writeFile(
      join(proc, String(process.pid), 'status'),
      `Name:\tnode\nUid:\t${uid + 1}\t${uid + 1}\t${uid + 1}\t${uid + 1}\nGid:\t5\t5\t5\t5\nGroups:\t5 6\n`,
    );
    await writeFile(join(proc, String(process.pid), 'cgroup'), '0::/system.slice/impostor.service\n');
    const world = await startWorld({ procRoot: proc });
    try {
      const client = await world.client();
      const caller = JSON.parse((await client.status()).hostId) as Caller;
      assert.equal(caller.uid, uid);
      assert.equal(caller.unit, null);
      assert.ok(!caller.gids.includes(6), 'groups come from the bus, not the stale /proc entry');
    } finally {
      await world.stop();
      await rm(proc, { recursive: true, force: true });
    }
  });
});

async function startWorldOn(bus: TestBus) {
  const logs = captureLogs('debug');
  const broker = new FixedBroker();
  const events = new TestEvents();
  const connection = await connectBus({ address: bus.address });
  const exported = await exportBroker(connection, broker, events, { logger: logs.logger });
  return { logs, broker, events, connection, exported };
}
