/**
 * The shipped bus policy, unchanged, on a real dbus-daemon, with real users: root is served and may
 * own the name; `nobody` (via setpriv) is refused by the bus for the root-only methods and cannot
 * own the name, and for the open methods reaches the broker as itself. Needs root:
 * `npm run test:root`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Caller } from '../../src/broker/api.js';
import { exportBroker, type ExportedBroker } from '../../src/broker/dbus/service.js';
import { BrokerClient } from '../../src/dbus/client.js';
import { connectBus, type BusConnection } from '../../src/dbus/connection.js';
import { startDbusDaemon, type TestBus } from '../support/dbus-daemon.js';
import { captureLogs } from '../support/log-capture.js';
import { FixedBroker, GUEST, PF, TestEvents, TOKEN, VF } from '../integration/dbus/fixture.js';

const isRoot = process.getuid?.() === 0;
const FIXTURE = fileURLToPath(new URL('./fixtures/bus-client.js', import.meta.url));
const NOBODY_UID = 65534;

interface Outcome {
  readonly ok: boolean;
  readonly result?: unknown;
  readonly code?: string;
  readonly message?: string;
}

/** Runs the fixture as nobody:nogroup with no supplementary groups. */
function asNobody(...args: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'setpriv',
      ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, FIXTURE, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`fixture exited ${code}: ${err.trim()}`));
      else resolve(JSON.parse(out) as Outcome);
    });
  });
}

describe(
  'shipped bus policy, as root and as nobody',
  { skip: isRoot ? false : 'needs root (npm run test:root)' },
  () => {
    let bus: TestBus;
    let server: BusConnection;
    let exported: ExportedBroker;
    const logs = captureLogs('debug');

    before(async () => {
      bus = await startDbusDaemon({ policy: 'shipped' });
      server = await connectBus({ address: bus.address });
      exported = await exportBroker(server, new FixedBroker(), new TestEvents(), { logger: logs.logger });
    });

    after(async () => {
      await exported.close();
      server.close();
      await bus.stop();
      logs.assertNoSecrets([TOKEN]);
    });

    it('root owns the name (the broker above) and is served every method', async () => {
      const client = await BrokerClient.connect({ address: bus.address });
      try {
        const [v] = await client.prepareGuest(GUEST, 'vm', [{ address: VF, presentedToken: TOKEN }]);
        assert.equal(v?.verdict, 'ok');
        assert.equal(await client.rotate(PF), 'draining');
        assert.equal(await client.guestStarted(GUEST), undefined);
        const caller = JSON.parse((await client.status()).hostId) as Caller;
        assert.equal(caller.uid, 0);
      } finally {
        client.close();
      }
    });

    for (const method of ['PrepareGuest', 'GuestStarted', 'ReleaseGuest', 'Rotate']) {
      it(`nobody is refused ${method} by the bus`, async () => {
        assert.deepEqual(await asNobody(bus.address, 'call', method), {
          ok: false,
          code: 'DENIED',
          message: `the D-Bus policy does not let this user call ${method}`,
        });
      });
    }

    it('nobody reaches the broker for the open methods, identified as itself', async () => {
      const status = await asNobody(bus.address, 'call', 'Status');
      assert.equal(status.ok, true);
      const caller = JSON.parse((status.result as { hostId: string }).hostId) as Caller;
      assert.equal(caller.uid, NOBODY_UID);
      assert.deepEqual(caller.gids, [NOBODY_UID]);
      assert.notEqual(caller.pid, process.pid);

      assert.equal((await asNobody(bus.address, 'call', 'ListPfs')).ok, true);
      assert.deepEqual(await asNobody(bus.address, 'call', 'SetNumVfs'), { ok: true });
    });

    it('nobody cannot own the name', async () => {
      assert.deepEqual(await asNobody(bus.address, 'own'), {
        ok: false,
        code: 'DENIED',
        message: 'the bus policy does not let this process own org.vfbroker.Broker1',
      });
    });
  },
);
