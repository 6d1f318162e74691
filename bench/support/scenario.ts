/**
 * The benchmarks' host and policy: `pfCount` PFs of `vfs` VFs, and `guests` policy rules, each
 * granting one guest a slot of VFS_PER_GUEST consecutive VFs of one PF. Guest g sits on PF
 * g mod pfCount, so a load generator that gives each client the guests of its own PF never has two
 * clients asking for the same VF at once (which the broker would answer `busy`).
 */
import { VfbError } from '../../src/errors.js';
import type { WorldGuest } from '../../test/support/broker-world.js';

export const VFS_PER_GUEST = 8;

export interface Scenario {
  readonly pfCount: number;
  readonly vfs: number;
  readonly guests: number;
}

export interface BenchGuest extends WorldGuest {
  readonly pf: number;
  /** Indexes of its VFs on its PF. */
  readonly vfIndexes: readonly number[];
}

export function benchGuest(scenario: Scenario, g: number): BenchGuest {
  const slots = Math.floor(scenario.vfs / VFS_PER_GUEST);
  const pf = g % scenario.pfCount;
  const first = (Math.floor(g / scenario.pfCount) % slots) * VFS_PER_GUEST;
  const last = first + VFS_PER_GUEST - 1;
  return {
    uuid: `00000000-0000-4000-8000-${g.toString(16).padStart(12, '0')}`,
    name: `bench-${g}`,
    grants: [{ pf, first, last }],
    pf,
    vfIndexes: Array.from({ length: VFS_PER_GUEST }, (_, i) => first + i),
  };
}

export function benchGuests(scenario: Scenario): BenchGuest[] {
  if (scenario.vfs < VFS_PER_GUEST || scenario.guests < 1 || scenario.pfCount < 1) {
    throw new VfbError(
      'INVALID_ARGUMENT',
      `a bench scenario needs ≥ ${VFS_PER_GUEST} VFs per PF, a PF and a guest`,
    );
  }
  return Array.from({ length: scenario.guests }, (_, g) => benchGuest(scenario, g));
}

/** The guests on PF `pf`: one client's share. */
export function guestsOfPf(scenario: Scenario, pf: number): BenchGuest[] {
  return benchGuests(scenario).filter((g) => g.pf === pf);
}
