/**
 * A simulated host for plugin tests: the sysfs simulator built from a host fixture, a fake process
 * runner, captured logs, and temporary directories for the runtime directory and the files PF
 * drivers write. Everything a plugin touches comes from here, as it would from the broker.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PciAddress } from '../../../../src/pci/address.js';
import type { PluginContext } from '../../../../src/plugins/contract.js';
import type { Sysfs } from '../../../../src/sysfs/sysfs.js';
import { SysfsSimulator } from '../../../../src/sysfs/simulator.js';
import { FakeRunner } from '../../../support/fake-runner.js';
import { captureLogs, type CapturedLogs } from '../../../support/log-capture.js';
import { repoPath } from '../../../support/repo.js';

export const TOKEN = '3d6f2a8e-5b1c-4e7d-9f0a-6c2b8e4d1a57';
export const OTHER_TOKEN = '8a1c5e2f-7d3b-4a96-b0e4-2f9c6d1b3e78';

export interface World {
  readonly sim: SysfsSimulator;
  readonly runner: FakeRunner;
  readonly logs: CapturedLogs;
  /** The context plugins get; its sysfs can be swapped for a wrapper with `withSysfs`. */
  readonly ctx: PluginContext;
  readonly dir: string;
  withSysfs(sysfs: Sysfs): PluginContext;
  /** Fails if a token reached any log line. */
  assertNoTokenLogged(): void;
  cleanup(): Promise<void>;
}

/** A world on test/fixtures/hosts/<name>, or on a fixture given as YAML text. */
export async function makeWorld(
  fixture: { readonly name: string } | { readonly yaml: string },
): Promise<World> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vfb-plugins-'));
  let file: string;
  if ('name' in fixture) {
    file = repoPath('test', 'fixtures', 'hosts', fixture.name);
  } else {
    file = path.join(dir, 'host.yaml');
    await writeFile(file, fixture.yaml);
  }
  const sim = await SysfsSimulator.fromFixture(file);
  const runner = new FakeRunner();
  const logs = captureLogs('debug');
  const ctx: PluginContext = {
    sysfs: sim,
    runner,
    logger: logs.logger,
    runtimeDirectory: path.join(dir, 'run'),
  };
  return {
    sim,
    runner,
    logs,
    ctx,
    dir,
    withSysfs: (sysfs) => ({ ...ctx, sysfs }),
    assertNoTokenLogged: () => logs.assertNoSecrets([TOKEN, OTHER_TOKEN]),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Sets a vfio_pci module parameter the way `echo N > /sys/module/vfio_pci/parameters/<p>` would. */
export function setVfioParameter(sim: SysfsSimulator, parameter: string, value: 'Y' | 'N'): void {
  const state = sim.snapshot();
  state.modules['vfio_pci'] = { ...state.modules['vfio_pci'], [parameter]: value };
  sim.restore(state);
}

/** Whether a VF opens through VFIO with this token (null: without one), as QEMU would open it. */
export async function vfOpens(
  sim: SysfsSimulator,
  vf: PciAddress,
  token: string | null,
): Promise<boolean | string> {
  try {
    const handle = await sim.vfio.openDevice(token === null ? vf : `${vf} vf_token=${token}`);
    await sim.vfio.closeDevice(handle);
    return true;
  } catch (err) {
    return (err as { details?: { errno?: string } }).details?.errno ?? String(err);
  }
}

/** The sysfs-visible state, for "nothing changed" comparisons (kernel log and VFIO handles left out). */
export function sysfsState(sim: SysfsSimulator): unknown {
  const { devices, drivers, modules } = sim.snapshot();
  return { devices, drivers, modules };
}

/** A Sysfs that counts the calls that change something. */
export function countingWrites(inner: Sysfs): { sysfs: Sysfs; writes: () => number } {
  let writes = 0;
  const sysfs: Sysfs = {
    description: inner.description,
    listDevices: () => inner.listDevices(),
    exists: (a) => inner.exists(a),
    readAttribute: (a, n) => inner.readAttribute(a, n),
    writeAttribute: (a, n, v) => (writes++, inner.writeAttribute(a, n, v)),
    driver: (a) => inner.driver(a),
    iommuGroup: (a) => inner.iommuGroup(a),
    physfn: (a) => inner.physfn(a),
    virtfns: (a) => inner.virtfns(a),
    listDrivers: () => inner.listDrivers(),
    bind: (a, d) => (writes++, inner.bind(a, d)),
    unbind: (a) => (writes++, inner.unbind(a)),
    probe: (a) => (writes++, inner.probe(a)),
    moduleParameter: (m, p) => inner.moduleParameter(m, p),
    heldVfioGroup: (g) => inner.heldVfioGroup(g),
  };
  return { sysfs, writes: () => writes };
}

/**
 * Wraps a Sysfs so that a test can act mid-change: the hook given to arm() runs once, right after
 * the next write of 0 to `sriov_numvfs` (of `pf` only, when given) — the PF's VFs just removed.
 */
export class VfRemovalPause {
  #hook: (() => Promise<void>) | null = null;

  constructor(private readonly pf: PciAddress | null = null) {}

  arm(hook: () => Promise<void>): void {
    this.#hook = hook;
  }

  wrap(inner: Sysfs): Sysfs {
    return {
      ...countingWrites(inner).sysfs,
      writeAttribute: async (addr, name, value) => {
        await inner.writeAttribute(addr, name, value);
        const hook = this.#hook;
        if (hook && name === 'sriov_numvfs' && value === '0' && (this.pf === null || addr === this.pf)) {
          this.#hook = null;
          await hook();
        }
      },
    };
  }
}

/** A Sysfs on which the last VF never shows up (pci_iov_add_virtfn failing for it). */
export function losingLastVf(inner: Sysfs): Sysfs {
  return { ...countingWrites(inner).sysfs, virtfns: async (a) => (await inner.virtfns(a)).slice(0, -1) };
}
