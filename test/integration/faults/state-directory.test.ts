/**
 * The broker's state directory (leases, rotation journal) full, read-only or removed under a
 * running `vfbroker serve`. A lease that cannot be written must refuse the start (PrepareGuest
 * answers an error, the hook fails closed) and lose nothing: the leases already granted stay in
 * memory and on disk, and the same broker grants again once the directory is fixed.
 *
 * Full and read-only need a small tmpfs of their own, so root and mount(8); removed works anywhere.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ServeWorld, type WorldGuest } from '../../reliability/serve-world.js';
import { ROOT_ONLY, tmpfsUnavailable } from '../../reliability/root.js';
import { hookArgs, requireHookBundle, runHook } from '../../reliability/hook-runner.js';
import { stormDefinitions, stormGuests, type StormGuest } from '../../reliability/storm.js';
import { leaseFiles, readLeaseFiles } from '../../../src/broker/lease-journal.js';
import { VfbError } from '../../../src/errors.js';
import { captureLogs } from '../../support/log-capture.js';

const run = promisify(execFile);
const NO_TMPFS = tmpfsUnavailable();

let world: ServeWorld | undefined;
let mounted: string | null = null;
afterEach(async () => {
  if (mounted !== null) await run('umount', [mounted]).catch(() => undefined);
  mounted = null;
  await world?.dispose();
  world = undefined;
});

interface StateWorld {
  readonly w: ServeWorld;
  readonly guests: StormGuest[];
  readonly definitions: Map<string, string>;
}

/** A broker whose state directory is `tmpfs` (a fresh 512 KiB one) or a plain directory. */
async function stateWorld(tmpfs: boolean): Promise<StateWorld> {
  requireHookBundle();
  const guests = stormGuests({ authorised: 3, stale: 0, unauthorised: 0 });
  const w = (world = await ServeWorld.create({ pfCount: 1, guests }));
  if (tmpfs) {
    await mkdir(w.stateDirectory, { mode: 0o700 });
    await run('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0700', 'tmpfs', w.stateDirectory]);
    mounted = w.stateDirectory;
  }
  await w.startBroker();
  return { w, guests, definitions: await stormDefinitions(w, guests) };
}

function guest(s: StateWorld, i: number): WorldGuest {
  const g = s.guests[i];
  assert.ok(g);
  return g;
}

async function prepareOverBus(s: StateWorld, i: number): Promise<unknown> {
  const g = guest(s, i);
  const vf = await s.w.vf(0, i);
  const client = await s.w.client();
  const token = await client.getToken(vf);
  return client.prepareGuest(g.uuid, g.name, [{ address: vf, presentedToken: token }]).then(
    (verdicts) => verdicts.map((v) => v.verdict),
    (err: unknown) => err,
  );
}

async function hookExit(s: StateWorld, i: number): Promise<number | null> {
  const g = guest(s, i);
  return (
    await runHook(s.w.hookSettings, hookArgs(g.name, 'prepare'), { file: s.definitions.get(g.uuid) ?? '' })
  ).exitCode;
}

/** The guests holding leases, as the next start would read them from the state directory. */
async function leaseFile(s: StateWorld): Promise<string[]> {
  const files = leaseFiles(join(s.w.stateDirectory, 'leases.json'));
  const { leases } = await readLeaseFiles(files, captureLogs().logger);
  return [...leases.values()].map((l) => l.guestName).sort();
}

/** The error PrepareGuest answers when the lease table (its journal) cannot be written for `why`. */
function assertLeaseWriteRefused(err: unknown, s: StateWorld, why: string): void {
  assert.ok(err instanceof VfbError, String(err));
  assert.equal(err.code, 'UNAVAILABLE');
  assert.equal(err.message, `cannot write ${join(s.w.stateDirectory, 'leases.journal')}: ${why}`);
  assert.equal(err.hint, 'check the state directory: free space, mount options and ownership');
}

describe('the state directory fails under the broker', () => {
  it(
    'full: the start is refused, granted leases stay, and it grants again once there is room',
    { skip: NO_TMPFS },
    async () => {
      const s = await stateWorld(true);
      assert.deepEqual(await prepareOverBus(s, 0), ['ok']);
      const filler = join(s.w.stateDirectory, 'filler');
      await writeFile(filler, Buffer.alloc(1024 * 1024)).catch(() => undefined);

      assertLeaseWriteRefused(await prepareOverBus(s, 1), s, 'no space left on device');
      assert.notEqual(await hookExit(s, 1), 0);
      assert.equal((await (await s.w.client()).status()).leases, 1);
      assert.deepEqual(await leaseFile(s), ['storm-0']);

      await rm(filler);
      assert.deepEqual(await prepareOverBus(s, 1), ['ok']);
      assert.deepEqual(await leaseFile(s), ['storm-0', 'storm-1']);
    },
  );

  it(
    'read-only: the start is refused, granted leases stay, and it grants again once writable',
    { skip: NO_TMPFS },
    async () => {
      const s = await stateWorld(true);
      assert.deepEqual(await prepareOverBus(s, 0), ['ok']);
      await run('mount', ['-o', 'remount,ro', s.w.stateDirectory]);

      assertLeaseWriteRefused(await prepareOverBus(s, 1), s, 'read-only file system');
      assert.notEqual(await hookExit(s, 1), 0);
      assert.equal((await (await s.w.client()).status()).leases, 1);

      await run('mount', ['-o', 'remount,rw', s.w.stateDirectory]);
      assert.deepEqual(await prepareOverBus(s, 1), ['ok']);
      assert.deepEqual(await leaseFile(s), ['storm-0', 'storm-1']);
    },
  );

  it(
    'removed: the start is refused; once recreated, the broker writes every lease it holds again',
    { skip: ROOT_ONLY },
    async () => {
      const s = await stateWorld(false);
      assert.deepEqual(await prepareOverBus(s, 0), ['ok']);
      await rm(s.w.stateDirectory, { recursive: true });

      assertLeaseWriteRefused(await prepareOverBus(s, 1), s, 'directory does not exist');
      assert.notEqual(await hookExit(s, 1), 0);
      assert.equal((await (await s.w.client()).status()).leases, 1);

      await mkdir(s.w.stateDirectory, { mode: 0o700 });
      assert.deepEqual(await prepareOverBus(s, 1), ['ok']);
      assert.deepEqual(await leaseFile(s), ['storm-0', 'storm-1']);
    },
  );
});
