/**
 * A whole broker in one process, built the way `vfbroker serve` builds it (src/broker/serve.ts) but
 * on a generated simulated host: `pfCount` PFs with `vfs` VFs each, driven by the simulated PF
 * drivers of the rotation tests (a token-needing plugin whose token is the kernel model's), the
 * FileStore, the lease table, the rotator and a policy of guest rules given by the caller. Nothing
 * external is needed; `exportOn(address)` puts it on a bus when a test or a benchmark wants one.
 *
 * Production code does the composing wherever it can (bringUp, exportBroker), so what is measured
 * or tested here is the broker, not a stand-in. Differences from serve.ts: the plugin (simulated PF
 * driver), the store (always a FileStore), no libvirt definition sync (rotation reports no guests).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker/broker.js';
import { bringUp, bringUpOne, planCheck, type BringUpDeps } from '../../src/broker/bring-up.js';
import { exportBroker } from '../../src/broker/dbus/service.js';
import { EventHub } from '../../src/broker/events.js';
import { LeaseTable } from '../../src/broker/leases.js';
import { ManagedPfs, type ManagedPf } from '../../src/broker/managed-pfs.js';
import { createRotator, type DefinitionSync, type Rotator } from '../../src/broker/rotation/index.js';
import { FileStore } from '../../src/broker/store/file-store.js';
import { TokenCache } from '../../src/broker/store/token-cache.js';
import type { PfConfig as PfEntry } from '../../src/config/broker-config.js';
import { parseAccounts } from '../../src/config/accounts.js';
import { parsePolicyConfig, type Policy } from '../../src/config/policy-config.js';
import { connectBus } from '../../src/dbus/connection.js';
import { VfbError } from '../../src/errors.js';
import { RunningGuests } from '../../src/libvirt/running-guests.js';
import type { Logger } from '../../src/log.js';
import { formatPciAddress, type PciAddress } from '../../src/pci/address.js';
import type { PluginContext } from '../../src/plugins/contract.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { SysfsSimulator } from '../../src/sysfs/simulator.js';
import type { Sysfs } from '../../src/sysfs/sysfs.js';
import { FakeRunner } from './fake-runner.js';
import { SimPfDrivers, simPlugin } from '../integration/rotation/support/sim-plugin.js';

/** A policy rule for one guest: VFs `first`…`last` (by index) of the PF numbered `pf`. */
export interface WorldGuest {
  readonly uuid: string;
  readonly name: string;
  readonly grants: readonly { readonly pf: number; readonly first: number; readonly last: number }[];
}

export interface BrokerWorldOptions {
  readonly pfCount: number;
  readonly vfs: number;
  readonly guests: readonly WorldGuest[];
  readonly logger: Logger;
  /** How the PFs' simulated drivers rotate; live unless given. */
  readonly mode?: 'live' | 'drain';
  /**
   * policy.yaml owner rules: an application (by uid) or a guest (by UUID) that may set the VF count
   * of PF number `pf`.
   */
  readonly owners?: readonly WorldOwner[];
  /** libvirt's run directory for the broker (status files of running guests); none when absent. */
  readonly libvirtRunDirectory?: string;
  /** The sysfs the broker and its plugin use: the simulator, or a wrapper a test puts around it. */
  readonly sysfs?: (sim: SysfsSimulator) => Sysfs;
}

export type WorldOwner =
  { readonly uid: number; readonly pf: number } | { readonly guest: string; readonly pf: number };

export interface OnBus {
  /** Releases the name, lets calls in flight finish, closes the connection. */
  close(): Promise<void>;
}

const MINUTE = 60_000;

/** There is no libvirt here: a rotation in this world has no guest definitions to update. */
const NO_DEFINITIONS: DefinitionSync = { syncGuests: () => Promise.resolve({ synced: [], failed: [] }) };

export class BrokerWorld {
  readonly options: BrokerWorldOptions;
  /** Temporary directory holding the fixture, the token store and the state; dispose() removes it. */
  readonly dir: string;
  readonly sim: SysfsSimulator;
  readonly drivers: SimPfDrivers;
  readonly pfs: ManagedPfs;
  readonly leases: LeaseTable;
  readonly tokens: TokenCache;
  readonly events: EventHub;
  readonly rotator: Rotator;
  readonly policy: Policy;
  readonly broker: Broker;
  /** What the broker brings PFs up with (for a PfHealth of the world's own). */
  readonly bringUpDeps: BringUpDeps;
  readonly #store: FileStore;

  private constructor(parts: {
    options: BrokerWorldOptions;
    dir: string;
    sim: SysfsSimulator;
    drivers: SimPfDrivers;
    pfs: ManagedPfs;
    leases: LeaseTable;
    tokens: TokenCache;
    events: EventHub;
    rotator: Rotator;
    policy: Policy;
    broker: Broker;
    bringUpDeps: BringUpDeps;
    store: FileStore;
  }) {
    this.options = parts.options;
    this.dir = parts.dir;
    this.sim = parts.sim;
    this.drivers = parts.drivers;
    this.pfs = parts.pfs;
    this.leases = parts.leases;
    this.tokens = parts.tokens;
    this.events = parts.events;
    this.rotator = parts.rotator;
    this.policy = parts.policy;
    this.broker = parts.broker;
    this.bringUpDeps = parts.bringUpDeps;
    this.#store = parts.store;
  }

  /** Builds the host, brings every PF up with a fresh token and starts the broker core. */
  static async start(options: BrokerWorldOptions): Promise<BrokerWorld> {
    const dir = await mkdtemp(join(tmpdir(), 'vfb-world-'));
    try {
      return await BrokerWorld.#build(options, dir);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  static async #build(options: BrokerWorldOptions, dir: string): Promise<BrokerWorld> {
    const { logger } = options;
    const fixture = join(dir, 'host.yaml');
    await writeFile(fixture, hostYaml(options.pfCount, options.vfs));
    const sim = await SysfsSimulator.fromFixture(fixture);
    const drivers = new SimPfDrivers(sim);
    const plugin = simPlugin(drivers, options.mode ?? 'live');
    const store = await FileStore.open({ directory: join(dir, 'tokens') }, logger);
    const tokens = new TokenCache(store);
    const context: PluginContext = {
      sysfs: options.sysfs?.(sim) ?? sim,
      runner: new FakeRunner(),
      logger,
      runtimeDirectory: join(dir, 'run'),
    };
    // The world's one plugin is given to each PF directly, so the registry stays empty.
    const registry = await PluginRegistry.load({ logger, builtins: false });
    // A simulated host has no driverctl overrides to honour.
    const deps: BringUpDeps = { registry, context, store, tokens, logger, driverctlDirectory: null };
    const pfs = new ManagedPfs();
    for (let i = 0; i < options.pfCount; i++) {
      pfs.add({
        entry: pfEntry(i, options.vfs),
        plugin,
        pluginReason: 'broker world',
        wantedVfs: options.vfs,
        state: 'down',
        lastError: null,
        vfs: [],
      });
    }
    await bringUp(pfs, deps);
    const down = pfs
      .all()
      .filter((m, i) => m.state !== 'up' || m.vfs.some((vf, n) => vf !== vfAddress(i, n)));
    if (down.length > 0) {
      const [pf] = down;
      throw new VfbError(
        'INTERNAL',
        `broker world: PF ${pf?.entry.address} did not come up with its VFs where vfAddress() says: ${pf?.lastError ?? 'no error'}`,
      );
    }
    const stateDirectory = join(dir, 'state');
    await mkdir(stateDirectory, { recursive: true, mode: 0o700 });
    const leases = await LeaseTable.open({
      file: join(stateDirectory, 'leases.json'),
      pendingTtlMs: 10 * MINUTE,
      logger,
    });
    const events = new EventHub(logger);
    const rotator = createRotator({
      store,
      tokens,
      leases,
      pfs,
      pluginContext: context,
      journalDirectory: join(stateDirectory, 'rotation'),
      events,
      definitionSync: NO_DEFINITIONS,
      logger,
    });
    await rotator.recover();
    const accounts = parseAccounts('', '', { passwdFile: '/dev/null', groupFile: '/dev/null' });
    const policy = parsePolicyConfig(
      policyYaml(options.guests, options.owners ?? []),
      join(dir, 'policy.yaml'),
      accounts,
    );
    const broker = new Broker({
      hostId: 'broker-world',
      pfs,
      store,
      tokens,
      leases,
      policy: () => policy,
      rotator,
      context,
      bringUp: (managed: ManagedPf) => bringUpOne(pfs, managed, deps),
      planCheck: (managed: ManagedPf) => planCheck(managed, deps),
      events,
      runningGuests: new RunningGuests({
        // Without one, a directory that does not exist: no libvirt, so no caller is a guest's QEMU.
        directory: options.libvirtRunDirectory ?? join(dir, 'libvirt-run'),
        logger,
      }),
      logger,
    });
    return new BrokerWorld({
      options,
      dir,
      sim,
      drivers,
      pfs,
      leases,
      tokens,
      events,
      rotator,
      policy,
      broker,
      bringUpDeps: deps,
      store,
    });
  }

  /** Exports the broker on the bus at `address` as `vfbroker serve` does: name last, after the handlers. */
  async exportOn(address: string): Promise<OnBus> {
    const connection = await connectBus({ address });
    try {
      const exported = await exportBroker(connection, this.broker, this.events, {
        logger: this.options.logger,
      });
      return {
        async close() {
          await exported.close();
          connection.close();
        },
      };
    } catch (err) {
      connection.close();
      throw err;
    }
  }

  /**
   * Saves the simulated host as the state file of a persistent simulator (src/sysfs/persistent.ts),
   * so another process — the hook — sees the host as this broker left it. Returns the fixture it
   * pairs with.
   */
  async saveHostState(stateFile: string): Promise<{ fixture: string; stateFile: string }> {
    await writeFile(stateFile, JSON.stringify(this.sim.snapshot()), { mode: 0o600 });
    return { fixture: join(this.dir, 'host.yaml'), stateFile };
  }

  async dispose(): Promise<void> {
    await this.rotator.close();
    await this.drivers.stopAll();
    await this.#store.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** PF `i` at bus 0x10 + i. */
export function pfAddress(i: number): PciAddress {
  return formatPciAddress({ domain: 0, bus: 0x10 + i, slot: 0, function: 0 });
}

/** VF `n` of PF `i`: the fixture gives every PF VF offset 1 and stride 1, so VFs follow it on its bus. */
export function vfAddress(i: number, n: number): PciAddress {
  const devfn = n + 1;
  return formatPciAddress({ domain: 0, bus: 0x10 + i, slot: devfn >> 3, function: devfn & 7 });
}

function pfEntry(i: number, vfs: number): PfEntry {
  return {
    address: pfAddress(i),
    plugin: null,
    vfs,
    options: {},
    rotation: { maxAgeMs: null, drainTimeoutMs: 10 * MINUTE },
    vfDrivers: [],
    location: { file: 'broker.yaml', line: i + 1, column: 1 },
  };
}

/** SR-IOV PFs, unbound, with vfio-pci loaded with enable_sriov: the plugin binds them. */
export function hostYaml(pfCount: number, vfs: number): string {
  const devices = Array.from({ length: pfCount }, (_, i) =>
    [
      `  - address: "${pfAddress(i)}"`,
      '    id: "1b36:0010"',
      '    class: "010802"',
      `    iommuGroup: ${i + 1}`,
      `    sriov: { totalVfs: ${vfs}, offset: 1, stride: 1, vfDevice: "0010" }`,
    ].join('\n'),
  );
  return [
    'description: broker world host',
    'drivers: [vfio-pci]',
    'modules:',
    '  vfio_pci:',
    '    enable_sriov: Y',
    'devices:',
    ...devices,
    '',
  ].join('\n');
}

function policyYaml(guests: readonly WorldGuest[], owners: readonly WorldOwner[]): string {
  const subject = (o: WorldOwner) => ('uid' in o ? `app: { user: ${o.uid} }` : `guest: ${o.guest}`);
  const ownerLines =
    owners.length === 0
      ? []
      : ['owners:', ...owners.map((o) => `  - ${subject(o)}\n    pf: ${pfAddress(o.pf)}`)];
  if (guests.length === 0) return ['rules: []', ...ownerLines, ''].join('\n');
  const rules = guests.map((g) => {
    const grants = g.grants.map(
      (v) => `      - pf: ${pfAddress(v.pf)}\n        vfs: ["${v.first}-${v.last}"]`,
    );
    return [`  - guest: ${g.uuid}`, `    name: ${g.name}`, '    vfs:', ...grants].join('\n');
  });
  return [`rules:\n${rules.join('\n')}`, ...ownerLines, ''].join('\n');
}
