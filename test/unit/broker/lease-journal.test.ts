/**
 * The lease table's files (src/broker/lease-journal.ts): what a restart reads back after each way
 * the broker can stop — between batches, in the middle of an append, between the two steps of a
 * compaction (files written by hand as a crash would leave them) — and what a full or read-only
 * state directory does to a batch. Each restart is a new LeaseTable on the same files.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Lease } from '../../../src/broker/lease-journal.js';
import { LeaseTable } from '../../../src/broker/leases.js';
import { parsePciAddress, type PciAddress } from '../../../src/pci/address.js';
import { tmpfsUnavailable } from '../../reliability/root.js';
import { captureLogs, type CapturedLogs } from '../../support/log-capture.js';
import { rejection } from '../../support/rejection.js';

const run = promisify(execFile);
const NO_TMPFS = tmpfsUnavailable();

const PF = parsePciAddress('0000:3b:00.0');
const GUEST_A = '0b7c8d1e-2f3a-4b5c-8d6e-7f8091a2b3c4';
const GUEST_B = '1c8d9e2f-3a4b-4c5d-9e6f-8091a2b3c4d5';
const NOW = 1_000_000;

/** The n-th VF of PF: 0000:3b:10.0 … 0000:3b:17.7. */
function vf(n: number): PciAddress {
  return parsePciAddress(`0000:3b:${(0x10 + Math.floor(n / 8)).toString(16)}.${n % 8}`);
}

const NAMES: Record<string, string> = { [GUEST_A]: 'a', [GUEST_B]: 'b' };

/** An active lease of the n-th VF, as the broker writes it. */
function lease(n: number, guestUuid: string): Lease {
  return { vf: vf(n), pf: PF, guestUuid, guestName: `vm-${NAMES[guestUuid]}`, state: 'active', since: NOW };
}

/** A journal line as the broker writes it. */
function line(batch: number, set: Lease[], drop: PciAddress[] = []): string {
  return JSON.stringify({ batch, set, drop }) + '\n';
}

describe('the lease table on disk', () => {
  let dir: string;
  let logs: CapturedLogs;
  const snapshot = () => join(dir, 'leases.json');
  const journal = () => join(dir, 'leases.journal');
  const open = () =>
    LeaseTable.open({ file: snapshot(), pendingTtlMs: 60_000, logger: logs.logger, now: () => NOW });
  /** Each live lease as "VF guest state". */
  const held = (t: LeaseTable) =>
    t
      .all()
      .map((l) => `${l.vf} ${NAMES[l.guestUuid]} ${l.state}`)
      .sort();
  const warnings = () => logs.records().filter((r) => r['level'] === 40);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfb-lease-journal-'));
    logs = captureLogs();
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('loads a leases.json written before the journal existed, and carries on from it', async () => {
    await writeFile(snapshot(), JSON.stringify({ version: 1, leases: [lease(0, GUEST_A)] }) + '\n');
    const t = await open();
    assert.deepEqual(held(t), ['0000:3b:10.0 a active']);
    await t.prepare(GUEST_B, 'vm-1', [{ vf: vf(1), pf: PF }]);
    assert.deepEqual(held(await open()), ['0000:3b:10.0 a active', '0000:3b:10.1 b pending']);
  });

  it('appends one line per batch, leaves the snapshot alone, and a restart replays both', async () => {
    const t = await open();
    await t.prepare(GUEST_A, 'vm-a', [{ vf: vf(0), pf: PF }]);
    const first = await readFile(snapshot(), 'utf8');
    await t.started(GUEST_A);
    await t.prepare(GUEST_B, 'vm-b', [
      { vf: vf(1), pf: PF },
      { vf: vf(2), pf: PF },
    ]);
    await t.release(GUEST_A);

    assert.equal(await readFile(snapshot(), 'utf8'), first, 'the snapshot is not rewritten per batch');
    const text = await readFile(journal(), 'utf8');
    assert.ok(text.endsWith('\n'));
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { batch: number; set: Lease[]; drop: string[] });
    assert.deepEqual(
      lines.map((l) => [l.batch, l.set.map((x) => `${x.vf} ${x.state}`), l.drop]),
      [
        [2, ['0000:3b:10.0 active'], []],
        [3, ['0000:3b:10.1 pending', '0000:3b:10.2 pending'], []],
        [4, [], ['0000:3b:10.0']],
      ],
      'batch 1 (the first after a start) went to the snapshot',
    );
    assert.deepEqual(held(await open()), ['0000:3b:10.1 b pending', '0000:3b:10.2 b pending']);
  });

  it('loads a journal without a snapshot', async () => {
    await writeFile(journal(), line(1, [lease(0, GUEST_A), lease(1, GUEST_A)]) + line(2, [], [vf(0)]));
    assert.deepEqual(held(await open()), ['0000:3b:10.1 a active']);
  });

  it('skips the lines a newer snapshot holds (killed between writing it and emptying the journal)', async () => {
    // Batches 1–3 went to the journal; compaction at batch 4 (VF 0 to guest B) wrote the snapshot
    // and was killed before emptying the journal. Replaying 1–3 would give VF 0 back to guest A.
    await writeFile(
      journal(),
      line(1, [lease(0, GUEST_A)]) + line(2, [lease(1, GUEST_A)]) + line(3, [], [vf(0), vf(1)]),
    );
    await writeFile(snapshot(), JSON.stringify({ version: 1, batch: 4, leases: [lease(0, GUEST_B)] }) + '\n');
    const t = await open();
    assert.deepEqual(held(t), ['0000:3b:10.0 b active']);

    await t.prepare(GUEST_A, 'vm-a', [{ vf: vf(1), pf: PF }]);
    assert.deepEqual(held(await open()), ['0000:3b:10.0 b active', '0000:3b:10.1 a pending']);
    assert.deepEqual(warnings(), []);
  });

  it('replays lines after the snapshot over it, and lines it already holds change nothing', async () => {
    // Killed after batch 3's append, with batch 2 both in the snapshot and (not yet emptied) in the journal.
    await writeFile(snapshot(), JSON.stringify({ version: 1, batch: 2, leases: [lease(0, GUEST_A)] }) + '\n');
    await writeFile(journal(), line(2, [lease(0, GUEST_A)]) + line(3, [lease(1, GUEST_B)], [vf(0)]));
    assert.deepEqual(held(await open()), ['0000:3b:10.1 b active']);
  });

  for (const [what, torn] of [
    ['cut short', line(3, [lease(2, GUEST_B)]).slice(0, 40)],
    ['whole but unreadable (its blocks reached the disk in another order)', '\0'.repeat(30) + '\n'],
  ] as const) {
    it(`drops a torn last line (${what}) with a warning, and the next batch stays readable`, async () => {
      await writeFile(journal(), line(1, [lease(0, GUEST_A)]) + line(2, [lease(1, GUEST_A)]) + torn);
      const t = await open();
      assert.deepEqual(held(t), ['0000:3b:10.0 a active', '0000:3b:10.1 a active']);
      assert.deepEqual(
        warnings().map((r) => [r['msg'], r['path'], r['line']]),
        [
          [
            'dropped the torn last line of the lease journal: the broker stopped while writing it, before that change was confirmed',
            journal(),
            3,
          ],
        ],
      );

      await t.release(GUEST_A);
      await t.prepare(GUEST_B, 'vm-b', [{ vf: vf(3), pf: PF }]);
      logs = captureLogs();
      assert.deepEqual(held(await open()), ['0000:3b:10.3 b pending']);
      assert.deepEqual(warnings(), [], 'the torn line is gone, not in the middle');
    });
  }

  it('refuses to start on an unreadable line before the last, naming the file and the line', async () => {
    const valid = line(1, [lease(0, GUEST_A)]);
    for (const bad of [
      '{"batch":2,"set":[{"vf":"../../etc"}],"drop":[]}\n',
      '{"batch":2,"set":[],"drop":[],"token":"x"}\n',
      'not json\n',
    ]) {
      await writeFile(journal(), valid + bad + line(3, [lease(1, GUEST_A)]));
      const err = await rejection(open());
      assert.equal(err.code, 'STORE_CORRUPT');
      assert.equal(err.message, `lease journal ${journal()} is malformed at line 2`);
      assert.equal(
        err.hint,
        `move ${journal()} aside and restart the broker: it starts from ${snapshot()}, and guests started since re-register at their next start`,
      );
    }
  });

  it('refuses a journal whose batches do not follow the snapshot or each other (files from different times)', async () => {
    await writeFile(snapshot(), JSON.stringify({ version: 1, batch: 4, leases: [] }) + '\n');
    await writeFile(journal(), line(7, [lease(0, GUEST_A)]));
    const err = await rejection(open());
    assert.equal(err.code, 'STORE_CORRUPT');
    assert.equal(
      err.message,
      `lease journal ${journal()} does not follow ${snapshot()}: its line 1 is batch 7, the snapshot ends at batch 4`,
    );

    for (const [lines, at] of [
      [line(5, [lease(0, GUEST_A)]) + line(5, [lease(1, GUEST_A)]), 'line 2 (batch 5 after 5)'],
      [line(5, []) + line(6, []) + line(3, [lease(1, GUEST_A)]), 'line 3 (batch 3 after 6)'],
    ] as const) {
      await writeFile(journal(), lines);
      assert.equal((await rejection(open())).message, `lease journal ${journal()} is out of order at ${at}`);
    }
  });

  it('compacts: the journal stays bounded however many batches, and a restart has every lease', async () => {
    const t = await open();
    const all = Array.from({ length: 64 }, (_, n) => ({ vf: vf(n), pf: PF }));
    await t.prepare(GUEST_B, 'vm-b', all.slice(63));
    let written = 0;
    let largest = 0;
    while (written < 3 * 1024 * 1024) {
      const before = (await stat(journal())).size;
      await t.prepare(GUEST_A, 'vm-a', all.slice(0, 63));
      await t.release(GUEST_A);
      const after = (await stat(journal())).size;
      written += Math.max(0, after - before);
      largest = Math.max(largest, after);
    }
    assert.ok(largest < 1024 * 1024 + 32 * 1024, `the journal grew to ${largest} bytes`);
    const { batch } = JSON.parse(await readFile(snapshot(), 'utf8')) as { batch: number };
    assert.ok(batch > 100, `the snapshot is at batch ${batch}`);
    assert.deepEqual(held(await open()), ['0000:3b:17.7 b pending']);
  });

  describe('on a state directory of its own (tmpfs)', { skip: NO_TMPFS }, () => {
    let mounted = false;
    beforeEach(async () => {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir]);
      mounted = true;
    });
    afterEach(async () => {
      if (mounted) await run('umount', [dir]);
      mounted = false;
    });

    it('full in the middle of an append: the batch fails, memory and a restart keep the old table, and it writes again once there is room', async () => {
      const t = await open();
      await t.prepare(GUEST_B, 'vm-b', [{ vf: vf(1), pf: PF }]);
      // Until the next line of guest A would straddle a page: on a full tmpfs, the write fills the
      // journal's last page and stops there, leaving part of the line.
      for (;;) {
        const before = (await stat(journal())).size;
        await t.prepare(GUEST_A, 'vm-a', [{ vf: vf(0), pf: PF }]);
        const length = (await stat(journal())).size - before;
        await t.release(GUEST_A);
        const room = 4096 - ((await stat(journal())).size % 4096);
        if (room < length && room < 4096) break;
      }
      const good = (await stat(journal())).size;
      const filler = join(dir, 'filler');
      await writeFile(filler, Buffer.alloc(64 * 1024)).catch(() => undefined);

      const err = await rejection(t.prepare(GUEST_A, 'vm-a', [{ vf: vf(0), pf: PF }]));
      assert.equal(err.code, 'UNAVAILABLE');
      assert.equal(err.message, `cannot write ${journal()}: no space left on device`);
      assert.ok((await stat(journal())).size > good, 'part of the line was written');
      assert.deepEqual(held(t), ['0000:3b:10.1 b pending']);
      assert.deepEqual(held(await open()), ['0000:3b:10.1 b pending'], 'a restart now');
      assert.equal(warnings().length, 1, 'the part written is the torn last line');

      await rm(filler);
      await t.prepare(GUEST_A, 'vm-a', [{ vf: vf(0), pf: PF }]);
      await t.started(GUEST_A);
      logs = captureLogs();
      assert.deepEqual(held(await open()), ['0000:3b:10.0 a active', '0000:3b:10.1 b pending']);
      assert.deepEqual(warnings(), []);
    });

    it('read-only: the batch fails and memory keeps the old table; it writes again once writable', async () => {
      const t = await open();
      await t.prepare(GUEST_B, 'vm-b', [{ vf: vf(1), pf: PF }]);
      await t.started(GUEST_B);
      await run('mount', ['-o', 'remount,ro', dir]);

      const err = await rejection(t.prepare(GUEST_A, 'vm-a', [{ vf: vf(0), pf: PF }]));
      assert.equal(err.message, `cannot write ${journal()}: read-only file system`);
      assert.deepEqual(held(t), ['0000:3b:10.1 b active']);

      await run('mount', ['-o', 'remount,rw', dir]);
      await t.prepare(GUEST_A, 'vm-a', [{ vf: vf(0), pf: PF }]);
      assert.deepEqual(held(await open()), ['0000:3b:10.0 a pending', '0000:3b:10.1 b active']);
    });
  });

  it('writes every lease it holds again when its files are removed under it', async () => {
    const t = await open();
    await t.prepare(GUEST_A, 'vm-a', [{ vf: vf(0), pf: PF }]);
    await t.started(GUEST_A);
    await rm(snapshot());
    await rm(journal());
    await t.prepare(GUEST_B, 'vm-b', [{ vf: vf(1), pf: PF }]);
    assert.deepEqual(held(await open()), ['0000:3b:10.0 a active', '0000:3b:10.1 b pending']);
  });

  it('treats an empty journal as no batches', async () => {
    await appendFile(journal(), '');
    assert.deepEqual(held(await open()), []);
    assert.deepEqual(warnings(), []);
  });
});
