/**
 * A host for rotation tests: simulated PFs on vfio-pci with the simulated PF drivers of
 * sim-plugin.ts, a token store (FileStore by default, or one the test opens: VaultStore against the
 * Vault API test server), the lease table, the real broker core answering PrepareGuest, and the
 * rotator — all under a clock the test moves.
 *
 * What survives a broker crash is kept here (kernel, PF drivers, store backing, lease file, journal
 * directory); `restart()` drops the broker instance without closing it and builds the next one the
 * way `vfbroker serve` does: PFs brought up with the store's active token, then recover().
 * `gate` runs before and after every store write, PF driver token change and definition sync.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimPfDrivers, simPlugin, type Gate } from './sim-plugin.js';
import { TestClock } from './clock.js';
import { GatedStore, RecordingEvents, RecordingSync } from './doubles.js';
import type { Caller, DeviceVerdict } from '../../../../src/broker/api.js';
import { Broker } from '../../../../src/broker/broker.js';
import { ensureToken } from '../../../../src/broker/bring-up.js';
import { LeaseTable } from '../../../../src/broker/leases.js';
import { ManagedPfs, pluginPfConfig, type ManagedPf } from '../../../../src/broker/managed-pfs.js';
import { createRotator, type Rotator } from '../../../../src/broker/rotation/index.js';
import { FileStore } from '../../../../src/broker/store/file-store.js';
import { TokenCache } from '../../../../src/broker/store/token-cache.js';
import type { PfTokens, TokenStore } from '../../../../src/broker/store/token-store.js';
import type { PfConfig as PfEntry } from '../../../../src/config/broker-config.js';
import { parseAccounts } from '../../../../src/config/accounts.js';
import { parsePolicyConfig } from '../../../../src/config/policy-config.js';
import { RunningGuests } from '../../../../src/libvirt/running-guests.js';
import type { Logger } from '../../../../src/log.js';
import type { PciAddress } from '../../../../src/pci/address.js';
import type { Plugin, PluginContext } from '../../../../src/plugins/contract.js';
import { pfUp } from '../../../../src/plugins/lifecycle/pf.js';
import { SysfsSimulator } from '../../../../src/sysfs/simulator.js';
import { FakeRunner } from '../../../support/fake-runner.js';
import { captureLogs, type CapturedLogs } from '../../../support/log-capture.js';
import { vfOpens } from '../../../unit/plugins/support/world.js';
import { hostYaml, pfAddress, vfAddress } from '../../../support/broker-world.js';

export const ROOT: Caller = { uid: 0, pid: 1, gids: [], unit: null, busName: ':1.7' };
export const GUEST_A = { uuid: '7b2c9e1a-4d3f-4a8b-9c6e-1f2a3b4c5d6e', name: 'guest-a' } as const;
export const GUEST_B = { uuid: '0e9d8c7b-6a5f-4e3d-8c1b-9a8f7e6d5c4b', name: 'guest-b' } as const;
export type Guest = typeof GUEST_A | typeof GUEST_B;

const MINUTE = 60_000;

export interface WorldOptions {
  readonly mode: 'live' | 'drain';
  readonly pfCount?: number;
  readonly vfs?: number;
  /** One value for every PF, or one per PF. */
  readonly maxAgeMs?: number | null | readonly (number | null)[];
  readonly drainTimeoutMs?: number;
  /** FileStore in the world's directory when absent. */
  readonly openStore?: (logger: Logger) => Promise<TokenStore>;
  /** Tokens and credentials besides VF tokens that must never be logged. */
  readonly secrets?: readonly string[];
  /** 'info' keeps big worlds (the benchmark) cheap; tests keep every line. */
  readonly logLevel?: 'trace' | 'info';
}

/** One broker process's worth of state: lost in a crash. */
export interface BrokerInstance {
  readonly pfs: ManagedPfs;
  readonly tokens: TokenCache;
  readonly leases: LeaseTable;
  readonly rotator: Rotator;
  readonly broker: Broker;
  managed(pf: PciAddress): ManagedPf;
}

export class RotationWorld {
  readonly options: WorldOptions;
  readonly dir: string;
  readonly sim: SysfsSimulator;
  readonly drivers: SimPfDrivers;
  readonly plugin: Plugin;
  readonly logs: CapturedLogs;
  readonly context: PluginContext;
  readonly store: TokenStore;
  /** The store without gates, for the test's own reads. */
  readonly backing: TokenStore;
  readonly clock: TestClock;
  readonly events = new RecordingEvents();
  readonly sync = new RecordingSync([GUEST_A.name, GUEST_B.name]);
  readonly entries: readonly PfEntry[];
  gate: Gate = () => Promise.resolve();
  instance!: BrokerInstance;
  readonly #guestHandles = new Map<string, number[]>();
  readonly #seenTokens = new Set<string>();
  /** False while the instance is a crashed one, which must not be closed (its rotation never ends). */
  #live = true;
  readonly #policyText: string;

  private constructor(
    options: WorldOptions,
    dir: string,
    sim: SysfsSimulator,
    logs: CapturedLogs,
    backing: TokenStore,
  ) {
    this.options = options;
    this.dir = dir;
    this.sim = sim;
    this.logs = logs;
    this.backing = backing;
    this.drivers = new SimPfDrivers(sim);
    this.drivers.gate = (point) => this.gate(point);
    this.sync.gate = (point) => this.gate(point);
    this.plugin = simPlugin(this.drivers, options.mode);
    this.context = {
      sysfs: sim,
      runner: new FakeRunner(),
      logger: logs.logger,
      runtimeDirectory: join(dir, 'run'),
    };
    this.store = new GatedStore(
      backing,
      () => this.gate,
      (tokens) => this.#see(tokens),
    );
    this.clock = new TestClock(Date.now());
    const vfs = options.vfs ?? 4;
    this.entries = Array.from({ length: options.pfCount ?? 1 }, (_, i) => ({
      address: pfAddress(i),
      plugin: null,
      vfs,
      options: {},
      vfDrivers: [],
      rotation: { maxAgeMs: maxAgeOf(options, i), drainTimeoutMs: options.drainTimeoutMs ?? 10 * MINUTE },
      location: { file: 'broker.yaml', line: i + 1, column: 1 },
    }));
    this.#policyText = policyYaml(
      this.entries.map((e) => e.address),
      vfs,
    );
  }

  static async start(options: WorldOptions): Promise<RotationWorld> {
    const dir = await mkdtemp(join(tmpdir(), 'vfb-rotation-'));
    const fixture = join(dir, 'host.yaml');
    await writeFile(fixture, hostYaml(options.pfCount ?? 1, options.vfs ?? 4));
    const sim = await SysfsSimulator.fromFixture(fixture);
    const logs = captureLogs(options.logLevel ?? 'trace');
    const backing = await (
      options.openStore ?? ((logger) => FileStore.open({ directory: join(dir, 'tokens') }, logger))
    )(logs.logger);
    const world = new RotationWorld(options, dir, sim, logs, backing);
    world.instance = await world.#startInstance();
    await world.instance.rotator.recover();
    return world;
  }

  get rotator(): Rotator {
    return this.instance.rotator;
  }

  get broker(): Broker {
    return this.instance.broker;
  }

  get journalDirectory(): string {
    return join(this.dir, 'state', 'rotation');
  }

  pf(i = 0): PciAddress {
    return pfAddress(i);
  }

  /** VF `n` of PF `i`. The last VF of each PF is never given to a guest: tests probe tokens with it. */
  vf(n: number, i = 0): PciAddress {
    return vfAddress(i, n);
  }

  managed(i = 0): ManagedPf {
    return this.instance.managed(this.pf(i));
  }

  /** A broker crash: this instance is dropped as it is (nothing closed), and the next starts as serve does. */
  async restart(): Promise<BrokerInstance> {
    this.#live = false;
    this.instance = await this.#startInstance();
    this.#live = true;
    await this.instance.rotator.recover();
    return this.instance;
  }

  /** What the libvirt hook and QEMU do: PrepareGuest, then on `ok` GuestStarted and a VFIO open of the VF with the token. */
  async startGuest(guest: Guest, vf: PciAddress, token: string | null): Promise<DeviceVerdict> {
    const [verdict] = await this.broker.prepareGuest(ROOT, guest.uuid, guest.name, [
      { address: vf, presentedToken: token },
    ]);
    assert.ok(verdict);
    if (verdict.verdict !== 'ok') return verdict;
    await this.broker.guestStarted(ROOT, guest.uuid);
    const handle = await this.sim.vfio.openDevice(token === null ? vf : `${vf} vf_token=${token}`);
    this.#guestHandles.set(guest.uuid, [...(this.#guestHandles.get(guest.uuid) ?? []), handle]);
    return verdict;
  }

  /** QEMU exits (its VFs close), then libvirt's release reaches the broker. */
  async stopGuest(guest: Guest): Promise<void> {
    for (const handle of this.#guestHandles.get(guest.uuid) ?? []) await this.sim.vfio.closeDevice(handle);
    this.#guestHandles.delete(guest.uuid);
    await this.broker.releaseGuest(ROOT, guest.uuid, 'shutdown');
  }

  /**
   * The invariant: the token the PF's driver holds (the one its VFs open with, by the kernel model)
   * is the store's active or pending one. Says which.
   */
  async driverHolds(i = 0): Promise<'active' | 'pending'> {
    const tokens = this.#see(await this.backing.read(this.pf(i)));
    const probe = this.vf((this.options.vfs ?? 4) - 1, i);
    if ((await vfOpens(this.sim, probe, tokens.active.token)) === true) return 'active';
    if (tokens.pending && (await vfOpens(this.sim, probe, tokens.pending.token)) === true) return 'pending';
    return assert.fail(`the PF driver of ${this.pf(i)} holds a token the store does not have`);
  }

  /** No rotation left anywhere: journal empty, no pending generation, driver on the active token, PF up. */
  async assertConverged(i = 0): Promise<PfTokens> {
    const tokens = await this.backing.read(this.pf(i));
    assert.equal(tokens.pending, null, 'a pending generation is left in the store');
    assert.equal(await this.driverHolds(i), 'active');
    assert.deepEqual(await this.journalFiles(), []);
    assert.equal(this.managed(i).state, 'up');
    assert.equal(this.rotator.status(this.pf(i)).step, null);
    assert.equal(
      (await this.instance.tokens.get(this.pf(i))).active.generation,
      tokens.active.generation,
      'the cache lags the store',
    );
    return tokens;
  }

  /**
   * Waits for `count` TokenRotated events in all and for every rotation to have left the journal
   * (the event comes just before the journal entry goes).
   */
  async rotationsDone(count: number): Promise<void> {
    await this.events.whenRotated(count);
    await eventually('the rotation to leave the journal', () =>
      this.entries.every((e) => this.rotator.status(e.address).step === null),
    );
  }

  async journalFiles(): Promise<string[]> {
    return (await readdir(this.journalDirectory).catch(() => [])).filter((n) => !n.startsWith('.'));
  }

  /** Every VF token the store has handed out in this world, and the options' secrets. */
  secrets(): string[] {
    return [...this.#seenTokens, ...(this.options.secrets ?? [])];
  }

  /** Fails if a token or credential reached any log line. */
  assertNoSecretsLogged(): void {
    this.logs.assertNoSecrets(this.secrets());
  }

  async dispose(): Promise<void> {
    if (this.#live) await this.instance.rotator.close();
    await this.drivers.stopAll();
    await this.backing.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  #see(tokens: PfTokens): PfTokens {
    this.#seenTokens.add(tokens.active.token);
    if (tokens.pending) this.#seenTokens.add(tokens.pending.token);
    return tokens;
  }

  async #startInstance(): Promise<BrokerInstance> {
    const logger = this.logs.logger;
    const tokens = new TokenCache(this.store);
    const pfs = new ManagedPfs();
    for (const entry of this.entries) {
      pfs.add({
        entry,
        plugin: this.plugin,
        pluginReason: 'test',
        wantedVfs: entry.vfs,
        state: 'down',
        lastError: null,
        vfs: [],
      });
    }
    // As bring-up.ts does at broker start: the store's active token (created the first time).
    const bringUp = async (managed: ManagedPf): Promise<void> => {
      const token = (await ensureToken(managed.entry.address, { store: this.store, tokens })).active.token;
      const config = pluginPfConfig(managed.entry, managed.wantedVfs);
      await pfUp(this.context, this.plugin, config, token, { dryRun: false });
      managed.state = 'up';
      await pfs.refreshVfs(this.sim, managed.entry.address);
    };
    for (const managed of pfs.all()) await bringUp(managed);
    const leases = await LeaseTable.open({
      file: join(this.dir, 'state', 'leases.json'),
      pendingTtlMs: 10 * MINUTE,
      logger,
      now: () => this.clock.now(),
    });
    const rotator = createRotator({
      store: this.store,
      tokens,
      leases,
      pfs,
      pluginContext: this.context,
      journalDirectory: this.journalDirectory,
      events: this.events,
      definitionSync: this.sync,
      logger,
      clock: this.clock,
    });
    const accounts = parseAccounts('', '', { passwdFile: '/dev/null', groupFile: '/dev/null' });
    const policy = parsePolicyConfig(this.#policyText, 'policy.yaml', accounts);
    const broker = new Broker({
      hostId: 'test-host',
      pfs,
      store: this.store,
      tokens,
      leases,
      policy: () => policy,
      rotator,
      context: this.context,
      // No driverctl on a simulated host.
      planCheck: () => () => Promise.resolve(),
      bringUp,
      events: this.events,
      // No libvirt here: its run directory does not exist, so no caller is a guest's QEMU.
      runningGuests: new RunningGuests({ directory: join(this.dir, 'libvirt-run'), logger }),
      logger,
      now: () => this.clock.now(),
    });
    return {
      pfs,
      tokens,
      leases,
      rotator,
      broker,
      managed: (pf) => {
        const m = pfs.get(pf);
        assert.ok(m, `PF ${pf} is not managed`);
        return m;
      },
    };
  }
}

/** Waits (a few ms at a time, 2 s at most) for background work a test cannot await directly. */
export async function eventually(what: string, done: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await done()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.fail(`${what} did not happen`);
}

function maxAgeOf(options: WorldOptions, i: number): number | null {
  const { maxAgeMs = null } = options;
  return typeof maxAgeMs === 'number' || maxAgeMs === null ? maxAgeMs : (maxAgeMs[i] ?? null);
}

/** Both guests may use every VF but the last of every PF. */
function policyYaml(pfs: readonly PciAddress[], vfs: number): string {
  const grants = pfs.map((pf) => `      - pf: ${pf}\n        vfs: ["0-${vfs - 2}"]`).join('\n');
  return (
    [GUEST_A, GUEST_B]
      .map((g) => `  - guest: ${g.uuid}\n    name: ${g.name}\n    vfs:\n${grants}`)
      .join('\n')
      .replace(/^/, 'rules:\n') + '\n'
  );
}
