/**
 * The PFs this broker manages, as configured in broker.yaml, with the plugin chosen for each and
 * what the broker last learnt of them: state, VF addresses in `virtfnN` order, the last error. The
 * VF map answers "which PF and which index is this VF" from memory — PrepareGuest and GetToken ask
 * it on every call — and is refreshed from sysfs whenever the broker changes a PF's VFs.
 */
import type { PfState } from './api.js';
import { VfbError } from '../errors.js';
import type { PfConfig as PfEntry } from '../config/broker-config.js';
import type { PciAddress } from '../pci/address.js';
import type { PfConfig, Plugin } from '../plugins/contract.js';
import type { Sysfs } from '../sysfs/sysfs.js';

export interface ManagedPf {
  readonly entry: PfEntry;
  readonly plugin: Plugin;
  /** Why this plugin was chosen (for status and doctor). */
  readonly pluginReason: string;
  /** The VF count asked for: broker.yaml's, until SetNumVfs changes it (not written back to the file). */
  wantedVfs: number;
  state: PfState;
  /** One line saying why the PF is not up, null when it is. Never a token. */
  lastError: string | null;
  vfs: PciAddress[];
}

export interface VfLocation {
  readonly pf: PciAddress;
  readonly index: number;
}

export class ManagedPfs {
  readonly #byPf = new Map<PciAddress, ManagedPf>();
  readonly #byVf = new Map<PciAddress, VfLocation>();
  readonly #changes = new Map<PciAddress, { running: boolean; started: number }>();

  add(pf: ManagedPf): void {
    this.#byPf.set(pf.entry.address, pf);
  }

  get(pf: PciAddress): ManagedPf | undefined {
    return this.#byPf.get(pf);
  }

  all(): ManagedPf[] {
    return [...this.#byPf.values()];
  }

  /** Which managed PF a VF belongs to, and its index there; null for anything else. */
  locate = (vf: PciAddress): VfLocation | null => this.#byVf.get(vf) ?? null;

  /**
   * Runs a change of the PF's life cycle (a new VF count, up, down, a repair), one at a time per
   * PF: a second is refused BUSY, as two would interleave their sysfs writes. Meanwhile sysfs shows
   * the PF half changed — its VFs gone, its driver stopped — on purpose; the health check asks
   * `changing` and leaves such a PF alone rather than take it for a failure, and PrepareGuest
   * refuses its VFs. `work` checks what the change depends on (leases, rotation) itself, so that
   * nothing can slip in between its checks and the change.
   */
  async change<T>(pf: PciAddress, work: () => Promise<T>): Promise<T> {
    let changes = this.#changes.get(pf);
    if (changes === undefined) this.#changes.set(pf, (changes = { running: false, started: 0 }));
    if (changes.running) {
      throw new VfbError(
        'BUSY',
        `PF ${pf} is already being changed (a new VF count, pf up, pf down or a repair); retry when that is done`,
        { hint: `see \`vfbroker pf status ${pf}\`` },
      );
    }
    changes.running = true;
    changes.started++;
    try {
      return await work();
    } finally {
      changes.running = false;
    }
  }

  /** A change of the PF is running (PrepareGuest asks this for every device). */
  changing(pf: PciAddress): boolean {
    return this.#changes.get(pf)?.running ?? false;
  }

  /** How many changes of the PF ever started: compared before and after a look at the PF, a change
   * that came and went shows. */
  changesStarted(pf: PciAddress): number {
    return this.#changes.get(pf)?.started ?? 0;
  }

  /** Re-reads a PF's `virtfnN` links after its VFs changed. */
  async refreshVfs(sysfs: Sysfs, pf: PciAddress): Promise<void> {
    const managed = this.#byPf.get(pf);
    if (!managed) return;
    for (const vf of managed.vfs) this.#byVf.delete(vf);
    managed.vfs = await sysfs.virtfns(pf);
    managed.vfs.forEach((vf, index) => this.#byVf.set(vf, { pf, index }));
  }
}

/** The plugin's view of a broker.yaml PF entry, with the VF count asked for now. */
export function pluginPfConfig(entry: PfEntry, vfs: number = entry.vfs): PfConfig {
  return {
    address: entry.address,
    vfs,
    options: entry.options,
    vfDrivers: entry.vfDrivers,
    ...(entry.plugin === null ? {} : { plugin: entry.plugin }),
  };
}
