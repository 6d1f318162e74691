import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { LeaseTable } from '../../../src/broker/leases.js';
import { VfbError } from '../../../src/errors.js';
import { parsePciAddress } from '../../../src/pci/address.js';
import { captureLogs } from '../../support/log-capture.js';

const PF = parsePciAddress('0000:3b:00.0');
const VF1 = parsePciAddress('0000:3b:10.0');
const VF2 = parsePciAddress('0000:3b:10.2');
const GUEST_A = '0b7c8d1e-2f3a-4b5c-8d6e-7f8091a2b3c4';
const GUEST_B = '1c8d9e2f-3a4b-4c5d-9e6f-8091a2b3c4d5';

describe('LeaseTable', () => {
  let dir: string;
  let now: number;
  const open = (file = join(dir, 'leases.json')) =>
    LeaseTable.open({ file, pendingTtlMs: 60_000, logger: captureLogs().logger, now: () => now });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfb-leases-'));
    now = 1_000_000;
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('goes pending → active → released, and a restart keeps what was persisted', async () => {
    const t = await open();
    await t.prepare(GUEST_A, 'vm-a', [{ vf: VF1, pf: PF }]);
    assert.equal(t.get(VF1)?.state, 'pending');
    assert.equal(await t.started(GUEST_A), 1);
    const reopened = await open();
    assert.equal(reopened.get(VF1)?.state, 'active');
    assert.equal(reopened.get(VF1)?.guestUuid, GUEST_A);
    assert.deepEqual(
      reopened.ofPf(PF).map((l) => l.vf),
      [VF1],
    );
    assert.deepEqual(await reopened.release(GUEST_A), [VF1]);
    assert.equal((await open()).get(VF1), undefined);
  });

  it('removes the temporary file a killed write left behind', async () => {
    await writeFile(join(dir, '.leases.json.0a1b2c3d4e5f.tmp'), '{"version":1,"le');
    await writeFile(join(dir, 'other.tmp'), 'not ours');
    await open();
    assert.deepEqual((await readdir(dir)).sort(), ['other.tmp']);
  });

  it('writes its files owner-only', async () => {
    const t = await open();
    await t.prepare(GUEST_A, 'vm-a', [{ vf: VF1, pf: PF }]);
    await t.started(GUEST_A);
    assert.deepEqual((await readdir(dir)).sort(), ['leases.journal', 'leases.json']);
    assert.equal((await stat(join(dir, 'leases.json'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'leases.journal'))).mode & 0o777, 0o600);
  });

  it('writes nothing for a call that changes nothing', async () => {
    const t = await open();
    await t.prepare(GUEST_A, 'vm-a', [{ vf: VF1, pf: PF }]);
    await t.started(GUEST_A);
    const files = async () =>
      Promise.all(['leases.json', 'leases.journal'].map((f) => readFile(join(dir, f), 'utf8')));
    const before = await files();
    await t.prepare(GUEST_A, 'vm-a', [{ vf: VF1, pf: PF }]);
    assert.equal(await t.started(GUEST_A), 0);
    assert.deepEqual(await t.release(GUEST_B), []);
    assert.deepEqual(await files(), before);
  });

  it('treats release of a guest that holds nothing as normal (libvirt releases after a failed prepare)', async () => {
    const t = await open();
    assert.deepEqual(await t.release(GUEST_B), []);
  });

  it('expires a pending lease whose guest never started, but never an active one', async () => {
    const t = await open();
    await t.prepare(GUEST_A, 'vm-a', [{ vf: VF1, pf: PF }]);
    await t.prepare(GUEST_B, 'vm-b', [{ vf: VF2, pf: PF }]);
    await t.started(GUEST_B);
    now += 60_001;
    assert.equal(t.get(VF1), undefined);
    assert.equal(await t.started(GUEST_A), 0, 'an expired pending lease cannot be confirmed');
    assert.equal(t.get(VF2)?.state, 'active');
  });

  it('adds to a guest’s leases when it asks again at start, keeping what it holds', async () => {
    const t = await open();
    await t.prepare(GUEST_A, 'vm-a', [{ vf: VF1, pf: PF }]);
    await t.started(GUEST_A);
    await t.prepare(GUEST_A, 'vm-a', [
      { vf: VF1, pf: PF },
      { vf: VF2, pf: PF },
    ]);
    assert.equal(t.get(VF1)?.state, 'active', 'the lease it holds is kept as it is');
    assert.equal(t.get(VF2)?.state, 'pending');
    assert.equal(t.get(VF2)?.guestUuid, GUEST_A);
  });

  it("keeps each guest's and each PF's leases right as VFs change hands", async () => {
    const PF2 = parsePciAddress('0000:5e:00.0');
    const VF3 = parsePciAddress('0000:5e:02.0');
    const GUEST_C = '2d9eaf30-4b5c-4d6e-8f70-91a2b3c4d5e6';
    const t = await open();
    const byPf = (table: LeaseTable, pf: typeof PF) => table.ofPf(pf).map((l) => `${l.vf} ${l.guestUuid}`);
    await t.prepare(GUEST_A, 'vm-a', [
      { vf: VF1, pf: PF },
      { vf: VF3, pf: PF2 },
    ]);
    await t.prepare(GUEST_B, 'vm-b', [{ vf: VF2, pf: PF }]);
    assert.equal(await t.started(GUEST_A), 2);
    assert.deepEqual(byPf(t, PF), [`${VF1} ${GUEST_A}`, `${VF2} ${GUEST_B}`], 'in the order they were made');

    assert.deepEqual(await t.release(GUEST_A), [VF1, VF3]);
    assert.deepEqual(byPf(t, PF2), []);
    await t.prepare(GUEST_B, 'vm-b', [{ vf: VF1, pf: PF }]);
    assert.deepEqual(byPf(t, PF), [`${VF2} ${GUEST_B}`, `${VF1} ${GUEST_B}`]);
    assert.equal(await t.started(GUEST_B), 2);
    assert.deepEqual(await t.release(GUEST_A), [], 'A holds nothing any more');

    // A pending lease that expires is dropped by the next change, and leaves every view.
    await t.prepare(GUEST_C, 'vm-c', [{ vf: VF3, pf: PF2 }]);
    now += 60_001;
    await t.prepare(GUEST_A, 'vm-a', [{ vf: VF3, pf: PF2 }]);
    assert.deepEqual(byPf(t, PF2), [`${VF3} ${GUEST_A}`]);
    assert.deepEqual(await t.release(GUEST_C), []);

    const reopened = await open();
    assert.deepEqual(byPf(reopened, PF), byPf(t, PF));
    assert.deepEqual(byPf(reopened, PF2), byPf(t, PF2));
    assert.deepEqual(await reopened.release(GUEST_B), [VF2, VF1]);
  });

  it('drops the active leases of guests no longer running, but not pending ones', async () => {
    const t = await open();
    await t.prepare(GUEST_A, 'vm-a', [{ vf: VF1, pf: PF }]);
    await t.started(GUEST_A);
    await t.prepare(GUEST_B, 'vm-b', [{ vf: VF2, pf: PF }]);
    assert.deepEqual(await t.reconcile(new Set()), ['vm-a']);
    assert.equal(t.get(VF1), undefined);
    assert.equal(t.get(VF2)?.state, 'pending', 'a guest still starting keeps its lease');
    assert.deepEqual(await (await open()).reconcile(new Set([GUEST_A])), [], 'persisted');
  });

  it('fails a batch whose change throws, writes none of it, and goes on with the next', async () => {
    const t = await open();
    await t.prepare(GUEST_A, 'vm-a', [{ vf: VF1, pf: PF }]);
    await t.started(GUEST_A);
    const broken = {
      has: () => {
        throw new Error('the running-guests set broke');
      },
    } as unknown as ReadonlySet<string>;
    await assert.rejects(t.reconcile(broken), /the running-guests set broke/);
    assert.equal(t.get(VF1)?.state, 'active');
    await t.prepare(GUEST_B, 'vm-b', [{ vf: VF2, pf: PF }]);
    assert.equal((await open()).get(VF2)?.guestUuid, GUEST_B);
  });

  it('loses none of many changes made at once (they are written together)', async () => {
    const t = await open();
    const guests = Array.from(
      { length: 50 },
      (_, i) => `00000000-0000-4000-8000-${i.toString().padStart(12, '0')}`,
    );
    const vf = (i: number) => parsePciAddress(`0000:3b:1${Math.floor(i / 8)}.${i % 8}`);
    await Promise.all(guests.map((g, i) => t.prepare(g, `vm-${i}`, [{ vf: vf(i), pf: PF }])));
    await Promise.all(guests.slice(0, 25).map((g) => t.started(g)));
    const reopened = await open();
    assert.equal(reopened.all().length, 50);
    assert.equal(reopened.all().filter((l) => l.state === 'active').length, 25);
    assert.equal(reopened.get(vf(49))?.guestUuid, guests[49]);
  });

  it('keeps memory on the old table when the write fails, and writes it all once it can', async () => {
    const sub = join(dir, 'state');
    await mkdir(sub);
    const t = await open(join(sub, 'leases.json'));
    await t.prepare(GUEST_A, 'vm-a', [{ vf: VF1, pf: PF }]);
    await rm(sub, { recursive: true }); // the state directory vanished (or its disk failed)
    await assert.rejects(t.prepare(GUEST_B, 'vm-b', [{ vf: VF2, pf: PF }]), (err: unknown) => {
      assert.ok(err instanceof VfbError && err.code === 'UNAVAILABLE');
      assert.match(err.message, /^cannot write .*leases\.journal: directory does not exist$/);
      return true;
    });
    assert.equal(t.get(VF2), undefined);
    assert.equal(t.get(VF1)?.guestUuid, GUEST_A);

    await mkdir(sub); // recreated empty: the next change writes every lease held
    await t.prepare(GUEST_B, 'vm-b', [{ vf: VF2, pf: PF }]);
    const reopened = await open(join(sub, 'leases.json'));
    assert.deepEqual(
      reopened.all().map((l) => l.guestUuid),
      [GUEST_A, GUEST_B],
    );
  });

  it('refuses a corrupt or hand-edited file with a one-line error', async () => {
    for (const content of [
      '{not json',
      JSON.stringify({ version: 1, leases: [{ vf: '../../etc', pf: PF }] }),
      JSON.stringify({ version: 2, leases: [] }),
    ]) {
      await writeFile(join(dir, 'leases.json'), content);
      await assert.rejects(
        open(),
        (err: unknown) =>
          err instanceof VfbError && err.code === 'STORE_CORRUPT' && !err.message.includes('\n'),
      );
    }
    assert.equal(
      await readFile(join(dir, 'leases.json'), 'utf8'),
      JSON.stringify({ version: 2, leases: [] }),
      'nothing overwritten',
    );
  });
});
