/**
 * `vfbroker serve` SIGKILLed (the OOM killer, `kill -9`) in the middle of its work: while hooks are
 * preparing guests, while it writes the lease table, and while it rotates a token. A real child
 * process whose PF driver (the demo's DPDK stand-in) really sets the token in the simulated kernel,
 * so what survives is what survives on a host. After each kill the next start must come up at the
 * first try and:
 * - every guest whose hook said yes still holds its VF (the lease was written before the answer);
 * - every hook that did not get an answer refused its start (fail closed) and passes when rerun;
 * - the lease table and the token store are readable, and the PF driver holds a token the store has.
 */
import assert from 'node:assert/strict';
import { watch } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { ServeWorld } from '../../reliability/serve-world.js';
import { ROOT_ONLY } from '../../reliability/root.js';
import { hookArgs, requireHookBundle, runHook, type HookRun } from '../../reliability/hook-runner.js';
import {
  pfsFor,
  stormDefinitions,
  stormGuests,
  type StormGuest,
  type StormMix,
} from '../../reliability/storm.js';
import { leaseFiles, readLeaseFiles } from '../../../src/broker/lease-journal.js';
import { captureLogs } from '../../support/log-capture.js';

const MIX: StormMix = { authorised: 6, stale: 0, unauthorised: 0 };
const HANG = { timeout: 120_000 };

let world: ServeWorld | undefined;
afterEach(async () => {
  await world?.dispose();
  world = undefined;
});

interface Killed {
  readonly w: ServeWorld;
  readonly guests: StormGuest[];
  readonly definitions: Map<string, string>;
}

async function killedWorld(): Promise<Killed> {
  requireHookBundle();
  const guests = stormGuests(MIX);
  const w = (world = await ServeWorld.create({ pfCount: pfsFor(MIX), guests }));
  await w.startBroker();
  return { w, guests, definitions: await stormDefinitions(w, guests) };
}

function prepare(w: ServeWorld, g: StormGuest, definitions: Map<string, string>): Promise<HookRun> {
  return runHook(w.hookSettings, hookArgs(g.name, 'prepare'), { file: definitions.get(g.uuid) ?? '' });
}

/** The lease files as the next broker will read them: they must load, and they name guests by UUID. */
async function leasedGuests(w: ServeWorld): Promise<Set<string>> {
  const files = leaseFiles(join(w.stateDirectory, 'leases.json'));
  const { leases } = await readLeaseFiles(files, captureLogs().logger);
  return new Set([...leases.values()].map((l) => l.guestUuid));
}

/**
 * Every hook that was told yes kept its lease; every other one refused its start (fail closed). Its
 * wording is checked in serve-process.test.ts (the installed hook's "broker gone" line).
 */
async function assertAnswersKept(k: Killed, runs: readonly HookRun[]): Promise<void> {
  const leased = await leasedGuests(k.w);
  runs.forEach((run, i) => {
    const g = k.guests[i] as StormGuest;
    if (run.exitCode === 0) assert.ok(leased.has(g.uuid), `${g.name} was told yes but lost its lease`);
    else {
      assert.ok(run.exitCode !== null && run.exitCode > 1, `${g.name}: exit ${run.exitCode}: ${run.stderr}`);
      assert.match(run.stderr, /^vfbroker: .*; VF \S+ not checked; start refused — /);
    }
  });
  assert.equal((await (await k.w.client()).status()).leases, leased.size);
}

/** The restarted broker serves every guest, and each PF's driver holds the token the store has. */
async function assertServesAgain(k: Killed): Promise<void> {
  const { w, guests, definitions } = k;
  const reruns = await Promise.all(guests.map((g) => prepare(w, g, definitions)));
  assert.deepEqual(
    reruns.map((r) => [r.exitCode, r.stderr]),
    guests.map(() => [0, '']),
  );
  const client = await w.client();
  for (let i = 0; i < pfsFor(MIX); i++) {
    const vf = await w.vf(i, 6);
    assert.ok(
      await w.vfOpensWith(vf, await client.getToken(vf)),
      `the PF driver of ${w.pf(i)} holds another token`,
    );
  }
}

describe('the broker SIGKILLed', { skip: ROOT_ONLY }, () => {
  it('while hooks are preparing guests', HANG, async () => {
    const k = await killedWorld();
    const broker = k.w.broker;
    assert.ok(broker);

    const storm = Promise.all(k.guests.map((g) => prepare(k.w, g, k.definitions)));
    await broker.saying('PrepareGuest decision');
    await k.w.killBroker();
    const runs = await storm;
    await k.w.startBroker();

    await assertAnswersKept(k, runs);
    await assertServesAgain(k);
  });

  it('while it writes the lease table', HANG, async () => {
    const k = await killedWorld();
    // Kill the moment a lease is appended to the journal. Not at the first lease: a fresh broker
    // writes that one as a snapshot (the crash points of compaction are in lease-journal.test.ts).
    let armed = false;
    const watcher = watch(k.w.stateDirectory, (_event, name) => {
      if (armed && name === 'leases.journal') k.w.broker?.kill('SIGKILL');
    });
    const runs: HookRun[] = [];
    try {
      for (const g of k.guests) {
        const run = await prepare(k.w, g, k.definitions);
        runs.push(run);
        armed = true;
        if (run.exitCode !== 0) break;
      }
    } finally {
      watcher.close();
    }
    assert.ok(
      runs.some((r) => r.exitCode !== 0),
      'the broker was never killed',
    );
    await k.w.killBroker();
    await k.w.startBroker();

    await assertAnswersKept(k, runs);
    await assertServesAgain(k);
    const leftovers = (await readdir(k.w.stateDirectory)).filter((n) => n.endsWith('.tmp'));
    assert.ok(leftovers.length <= 1, `temp files pile up: ${leftovers.join(', ')}`);
  });

  it('while it rotates a token', HANG, async () => {
    const k = await killedWorld();
    const client = await k.w.client();
    const pf = k.w.pf(0);
    const before = (await client.listPfs()).find((p) => p.address === pf)?.generation;
    const journal = join(k.w.stateDirectory, 'rotation');
    const watcher = watch(k.w.stateDirectory, { recursive: true }, (_event, name) => {
      if (typeof name === 'string' && name.startsWith('rotation')) k.w.broker?.kill('SIGKILL');
    });
    let answer: string;
    try {
      answer = await client.rotate(pf).then(
        () => 'answered',
        () => 'killed',
      );
    } finally {
      watcher.close();
    }
    assert.equal(answer, 'killed', 'the rotation finished before the kill');
    await k.w.killBroker();
    await k.w.startBroker();

    const after = (await (await k.w.client()).listPfs()).find((p) => p.address === pf);
    assert.equal(after?.state, 'up');
    assert.ok(
      after.generation === before || after.generation === (before ?? 0) + 1,
      `generation ${after.generation}`,
    );
    assert.deepEqual(
      (await readdir(journal).catch(() => [])).filter((n) => !n.startsWith('.')),
      [],
      'the journal still holds a rotation',
    );
    await assertServesAgain(k);
  });
});
