/**
 * Faults around a running `vfbroker serve` (a child process on a private dbus-daemon, its PF driver
 * the demo's DPDK stand-in on a simulated host): the dbus-daemon restarted under it, and its PF
 * driver dying. For each: what the user sees, that nothing is lost, and no crash loop.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { domainXml } from '../../reliability/guest-xml.js';
import { ServeWorld } from '../../reliability/serve-world.js';
import { ROOT_ONLY } from '../../reliability/root.js';
import { hookArgs, requireHookBundle, runHook } from '../../reliability/hook-runner.js';
import { stormDefinitions, stormGuests } from '../../reliability/storm.js';

/** A hang must fail the test, not the suite's patience: the broker is expected to exit long before. */
const HANG = { timeout: 60_000 };

let world: ServeWorld | undefined;
afterEach(async () => {
  await world?.dispose();
  world = undefined;
});

async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await done()) return;
    await sleep(25);
  }
  assert.fail(`${what} did not happen`);
}

/** When the supervisor saw the driver exit, as the broker logged it. */
function lastExitTime(output: string): string {
  return (
    /"detail":"DPDK PF application exited unexpectedly \(killed by SIGKILL\) at ([^"]+)"/.exec(output)?.[1] ??
    '?'
  );
}

describe('dbus-daemon restarted under the broker', () => {
  it(
    'the broker exits 1 (so systemd restarts it) saying why, and the next start takes the name back with the same token',
    HANG,
    async () => {
      const w = (world = await ServeWorld.create({ pfCount: 1, guests: [] }));
      const broker = await w.startBroker();
      const before = await (await w.client()).listPfs();

      await w.restartBus();
      const exit = await broker.exited;

      assert.deepEqual(exit, { code: 1, signal: null });
      const fatal = broker.records().filter((r) => (r['level'] as number) >= 50);
      assert.deepEqual(
        fatal.map((r) => [r['msg'], r['why']]),
        [
          [
            'cannot serve any more; stopping so that systemd restarts the broker',
            'the bus connection was lost',
          ],
        ],
      );
      assert.deepEqual(await w.standIns(), [], 'a PF driver outlived its broker');
      await w.startBroker();
      const after = await (await w.client()).listPfs();
      assert.deepEqual(
        after.map((p) => [p.address, p.state, p.generation]),
        before.map((p) => [p.address, 'up', p.generation]),
      );
    },
  );
});

describe('the broker is not running', () => {
  it('the installed hook refuses the start with exit 69 and says the broker is not running', async () => {
    requireHookBundle();
    const w = (world = await ServeWorld.create({ pfCount: 1, guests: [] }));
    // The broker brought the PF up, then stopped: its VFs stay, the hook finds them token-relevant.
    await w.startBroker();
    await w.stopBroker();
    const vf = await w.vf(0, 0);
    const uuid = randomUUID();

    const run = await runHook(w.hookSettings, hookArgs('vm', 'prepare'), {
      xml: domainXml('vm', uuid, [{ vf, token: randomUUID() }]),
    });

    assert.deepEqual(
      [run.exitCode, run.stderr],
      [
        69,
        `vfbroker: broker not reachable (the vfbroker broker is not running (org.vfbroker.Broker1 has no owner)); VF ${vf} not checked; start refused — systemctl status vfbroker`,
      ],
    );
  });
});

describe('the PF driver dies', () => {
  it(
    'pf status says so with the signal; the broker keeps serving; pf up starts it again',
    { skip: ROOT_ONLY },
    async () => {
      const w = (world = await ServeWorld.create({ pfCount: 1, guests: [] }));
      const broker = await w.startBroker();
      const client = await w.client();
      const [pid] = await w.standIns();
      assert.ok(pid !== undefined);

      process.kill(pid, 'SIGKILL');
      type Status = {
        driver: { running: boolean; detail: string; lastExit: { signal: string | null } | null };
      };
      let status: Status | undefined;
      await until('pf status to see the driver gone', async () => {
        status = (await client.pfStatus(w.pf(0))) as Status;
        return !status.driver.running;
      });

      assert.equal(status?.driver.lastExit?.signal, 'SIGKILL');
      assert.match(
        status?.driver.detail ?? '',
        /^DPDK PF application exited unexpectedly \(killed by SIGKILL\) at \d{4}-\d\d-\d\dT[\d:.]+Z$/,
      );
      const warned = broker
        .records()
        .filter((r) => r['msg'] === 'DPDK PF application exited unexpectedly (killed by SIGKILL)');
      assert.equal(warned.length, 1);
      assert.equal(warned[0]?.['pid'], pid);
      assert.equal((await client.status()).pfs, 1);

      await client.pfUp(w.pf(0), false);
      assert.equal(((await client.pfStatus(w.pf(0))) as Status).driver.running, true);
      assert.equal((await w.standIns()).length, 1);
    },
  );

  it(
    'the broker notices at its next health check: guests are refused pf-not-ready, then it brings the PF up again',
    { skip: ROOT_ONLY, timeout: 60_000 },
    async () => {
      requireHookBundle();
      const guests = stormGuests({ authorised: 1, stale: 0, unauthorised: 0 });
      const w = (world = await ServeWorld.create({ pfCount: 1, guests, healthCheckInterval: '2s' }));
      const broker = await w.startBroker();
      const definitions = await stormDefinitions(w, guests);
      const guest = guests[0];
      assert.ok(guest);
      const prepare = () =>
        runHook(w.hookSettings, hookArgs(guest.name, 'prepare'), { file: definitions.get(guest.uuid) ?? '' });
      const [pid] = await w.standIns();
      assert.ok(pid !== undefined);

      process.kill(pid, 'SIGKILL');
      await broker.saying('"msg":"PF no longer up"');
      const refused = await prepare();

      const [pf, vf] = [w.pf(0), await w.vf(0, 0)];
      assert.deepEqual(
        [refused.exitCode, refused.stderr],
        [
          1,
          `vfbroker: VF ${vf} (PF ${pf} VF 0): its PF is not ready (driver-running: DPDK PF application exited unexpectedly (killed by SIGKILL) at ${lastExitTime(broker.output)}); see: vfbroker pf status ${pf}`,
        ],
      );
      await broker.saying('"msg":"bringing a degraded PF up again"');
      const client = await w.client();
      await until('the PF to be up again', async () => (await client.listPfs())[0]?.state === 'up');
      assert.notDeepEqual(await w.standIns(), [pid]);
      assert.deepEqual(await prepare().then((r) => [r.exitCode, r.stderr]), [0, '']);
    },
  );
});
