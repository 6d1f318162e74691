/**
 * `npm run bench:leases`: what one guest's life costs the lease table — PrepareGuest's pending
 * leases for 8 VFs, GuestStarted, ReleaseGuest, each written to the journal before it returns —
 * when the host already holds 0, 512 or 4,096 active leases (4,096: 64 PFs × 64 VFs, all in use).
 * Wall time per cycle is mostly the three fdatasyncs; CPU time per cycle is what the broker's event
 * loop spends on it, which is what must not grow with the table. Prints figures; asserts nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { header, machineLoad, ms, table } from './support/report.js';
import { benchGuest, VFS_PER_GUEST, type BenchGuest, type Scenario } from './support/scenario.js';
import { LeaseTable } from '../src/broker/leases.js';
import { createLogger } from '../src/log.js';
import { pfAddress, vfAddress } from '../test/support/broker-world.js';

const HELD = [0, 512, 4096] as const;
/** The bench host of bench:broker, with as many 8-VF guests as fill it. */
const HOST: Scenario = { pfCount: 64, vfs: 64, guests: Math.max(...HELD) / VFS_PER_GUEST };
const CYCLES = 1000;
const WARM_UP = 200;

function leasesOf(guest: BenchGuest) {
  return guest.vfIndexes.map((n) => ({ vf: vfAddress(guest.pf, n), pf: pfAddress(guest.pf) }));
}

async function measure(held: number): Promise<{ wallMs: number; cpuMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'vfb-bench-leases-'));
  try {
    const leases = await LeaseTable.open({
      file: join(dir, 'leases.json'),
      pendingTtlMs: 60_000,
      logger: createLogger({ level: 'silent' }),
    });
    for (let g = 0; g < held / VFS_PER_GUEST; g++) {
      const guest = benchGuest(HOST, g);
      await leases.prepare(guest.uuid, guest.name, leasesOf(guest));
      await leases.started(guest.uuid);
    }
    // The guest that comes and goes: the one after the last a full host holds, on a PF of its own.
    const newcomer = { ...benchGuest(HOST, HOST.guests), pf: HOST.pfCount };
    const vfs = leasesOf(newcomer);
    const cycle = async () => {
      await leases.prepare(newcomer.uuid, newcomer.name, vfs);
      await leases.started(newcomer.uuid);
      await leases.release(newcomer.uuid);
    };
    // Warm-up: the JIT, and the first batch after opening, which compacts (lease-journal.ts).
    for (let i = 0; i < WARM_UP; i++) await cycle();
    const cpu = process.cpuUsage();
    const start = performance.now();
    for (let i = 0; i < CYCLES; i++) await cycle();
    const { user, system } = process.cpuUsage(cpu);
    return { wallMs: (performance.now() - start) / CYCLES, cpuMs: (user + system) / 1000 / CYCLES };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

process.stdout.write(
  header('leases bench: one guest start and stop against a table that already holds others', [
    `each cycle: pending leases for ${VFS_PER_GUEST} VFs, started, released — three batches, each journaled with fdatasync (in ${tmpdir()})`,
    `${CYCLES} cycles per row, one at a time, after ${WARM_UP} not counted`,
  ]),
);
const rows = [['active leases held', 'wall ms per cycle', 'CPU ms per cycle']];
for (const held of HELD) {
  const { wallMs, cpuMs } = await measure(held);
  rows.push([held.toLocaleString('en'), ms(wallMs), ms(cpuMs)]);
}
process.stdout.write(`${table(rows)}\n  at the end: ${machineLoad()}\n`);
