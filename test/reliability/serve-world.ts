/**
 * The real broker, `vfbroker serve`, as a child process on a simulated host: what the reliability
 * tests and `npm run reliability` kill, starve and flood. Its parts are the ones a host has:
 *
 * - a private dbus-daemon configured like the system bus with the shipped policy (test/support);
 * - a simulated host of `pfCount` Intel 82576 PFs (7 VFs each under the igb plugin) whose state
 *   lives in a file shared by the broker, its PF drivers and the hooks (src/sysfs/persistent.ts);
 * - the igb plugin's PF driver played by the demo's DPDK stand-in (src/demo/stand-ins/), a process of
 *   its own that really sets the PF's token in the simulated kernel, so a broker crash leaves what
 *   a real crash leaves;
 * - the file token store, or Vault (the Vault API test server) when `vault` is given;
 * - a policy granting every guest of `guests` its VF; the hook settings file pointing the installed
 *   hook (the bundle) at this bus and host.
 *
 * Everything lives in one temporary directory that dispose() removes after stopping what it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { writeHookSysfsTree } from '../../bench/support/sysfs-tree.js';
import type { BrokerConfigInput } from '../../src/config/broker-config.js';
import { BrokerClient } from '../../src/dbus/client.js';
import { KernelError } from '../../src/errors.js';
import type { HookSysfs } from '../../src/hooks/hook-settings.js';
import { writeStandIn } from '../../src/demo/stand-ins/common.js';
import { READY_PATTERN } from '../../src/demo/stand-ins/dpdk-pf-app.js';
import { parsePciAddress, type PciAddress } from '../../src/pci/address.js';
import { startPrivateBus, type PrivateBus } from '../../src/demo/private-bus.js';
import { openSimulatedSysfs } from '../../src/sysfs/persistent.js';
import type { SimulatedKernel } from '../../src/sysfs/simulator.js';

/** The igb plugin enables at most 7 VFs on an 82576 (plugins/igb). */
export const VFS_PER_PF = 7;
const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const DPDK_STAND_IN = new URL('../../src/demo/stand-ins/dpdk-pf-app.js', import.meta.url);
const READY_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 25_000;

export interface WorldGuest {
  readonly name: string;
  readonly uuid: string;
  /** VFs the policy grants it, by PF index and VF index. */
  readonly grants: readonly { readonly pf: number; readonly vf: number }[];
}

export interface VaultSettings {
  readonly address: string;
  /** A 0600 file holding the Vault token the broker logs in with. */
  readonly tokenFile: string;
  readonly hostId: string;
  readonly requestTimeoutMs?: number;
}

export interface ServeWorldOptions {
  readonly pfCount: number;
  readonly guests: readonly WorldGuest[];
  readonly vault?: VaultSettings;
  /** How each PF's driver gets its token (the igb plugin's `tokenVia`), by PF index; argv when absent. */
  readonly tokenVia?: readonly ('argv' | 'file')[];
  /** broker.yaml's health.checkInterval (how soon a dead PF driver is noticed); 15 s when absent. */
  readonly healthCheckInterval?: string;
  /** The hook's deadline (hook settings `deadlineMs`); 5 s like an installed hook when absent. */
  readonly hookDeadlineMs?: number;
  readonly logLevel?: 'debug' | 'info';
}

export interface BrokerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One `vfbroker serve` child: its output is kept in memory for the no-secret checks. */
export class BrokerChild {
  readonly pid: number;
  /** Everything it wrote to stdout and stderr, in order. */
  output = '';
  readonly exited: Promise<BrokerExit>;
  readonly #child: ChildProcess;
  readonly #waiters = new Set<() => void>();

  constructor(child: ChildProcess) {
    this.#child = child;
    this.pid = child.pid ?? 0;
    const collect = (d: string) => {
      this.output += d;
      for (const wake of this.#waiters) wake();
    };
    child.stdout?.setEncoding('utf8').on('data', collect);
    child.stderr?.setEncoding('utf8').on('data', collect);
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Resolves as soon as its output contains `text`. */
  saying(text: string): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!this.output.includes(text)) return;
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
      check();
    });
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.#child.kill(signal);
  }

  /** The lines the CLI's top-level catch wrote (`vfbroker: <message>`), for what the user sees. */
  get said(): string[] {
    return this.output.split('\n').filter((l) => l.startsWith('vfbroker: '));
  }

  /** Parsed JSON log lines. */
  records(): Record<string, unknown>[] {
    return this.output.split('\n').flatMap((l) => {
      if (!l.startsWith('{')) return [];
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }
}

export class ServeWorld {
  readonly dir: string;
  bus: PrivateBus;
  readonly options: ServeWorldOptions;
  readonly fixture: string;
  readonly stateFile: string;
  readonly stateDirectory: string;
  readonly runtimeDirectory: string;
  readonly configPath: string;
  readonly policyPath: string;
  readonly hookSettings: string;
  broker: BrokerChild | null = null;
  /** Every broker started in this world, for the no-secret checks over all their output. */
  readonly brokers: BrokerChild[] = [];
  readonly #clients: BrokerClient[] = [];

  private constructor(dir: string, bus: PrivateBus, options: ServeWorldOptions) {
    this.dir = dir;
    this.bus = bus;
    this.options = options;
    this.fixture = join(dir, 'host.yaml');
    this.stateFile = join(dir, 'host-state.json');
    this.stateDirectory = join(dir, 'state');
    this.runtimeDirectory = join(dir, 'run');
    this.configPath = join(dir, 'broker.yaml');
    this.policyPath = join(dir, 'policy.yaml');
    this.hookSettings = join(dir, 'hook.json');
  }

  /** Writes the host, the configuration and the stand-in; the broker is started by startBroker(). */
  static async create(options: ServeWorldOptions): Promise<ServeWorld> {
    const dir = await mkdtemp(join(tmpdir(), 'vfb-reliability-'));
    await chmod(dir, 0o700);
    let bus: PrivateBus;
    try {
      bus = await startBus(dir);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    const world = new ServeWorld(dir, bus, options);
    await world.#writeFiles();
    return world;
  }

  pf(i: number): PciAddress {
    return pfAddress(i);
  }

  /** Starts `vfbroker serve` and waits until it answers on the bus. */
  async startBroker(): Promise<BrokerChild> {
    const broker = this.spawnBroker();
    await this.ready(broker);
    return broker;
  }

  /** Starts `vfbroker serve` without waiting for it. */
  spawnBroker(): BrokerChild {
    const child = spawn(
      process.execPath,
      [CLI_MAIN, 'serve', '--config', this.configPath, '--policy', this.policyPath],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const broker = new BrokerChild(child);
    this.broker = broker;
    this.brokers.push(broker);
    return broker;
  }

  /** Resolves once `broker` answers Status; rejects with its last words if it exits first. */
  async ready(broker: BrokerChild): Promise<void> {
    const client = await this.client();
    try {
      const deadline = Date.now() + READY_DEADLINE_MS;
      for (;;) {
        if (!broker.running) {
          const exit = await broker.exited;
          throw new Error(
            `vfbroker serve exited (${exit.code ?? exit.signal ?? '?'}) during start-up: ${broker.said.join(' | ') || broker.output.slice(-2000)}`,
          );
        }
        const up = await client.status().then(
          () => true,
          () => false,
        );
        if (up) return;
        if (Date.now() > deadline)
          throw new Error(`vfbroker serve did not answer within ${READY_DEADLINE_MS} ms`);
        await sleep(50);
      }
    } finally {
      this.#forget(client);
    }
  }

  /** SIGTERM, then SIGKILL past the deadline; resolves to how it ended. */
  async stopBroker(): Promise<BrokerExit | null> {
    const broker = this.broker;
    if (broker === null) return null;
    this.broker = null;
    if (broker.running) {
      broker.kill('SIGTERM');
      const timer = setTimeout(() => broker.kill('SIGKILL'), STOP_DEADLINE_MS);
      const exit = await broker.exited;
      clearTimeout(timer);
      return exit;
    }
    return broker.exited;
  }

  /**
   * The broker killed outright, as the OOM killer or a `kill -9` would; resolves once it is gone and
   * so are its PF driver stand-ins (they exit when the broker's end of their stdin goes away).
   */
  async killBroker(): Promise<void> {
    const broker = this.broker;
    this.broker = null;
    if (broker === null) return;
    broker.kill('SIGKILL');
    await broker.exited;
    await this.untilNoStandIns();
  }

  /** A client on this world's bus, closed by dispose(). */
  async client(callTimeoutMs = 10_000): Promise<BrokerClient> {
    const c = await BrokerClient.connect({ address: this.bus.address, callTimeoutMs });
    this.#clients.push(c);
    return c;
  }

  /** The host as the broker's PF drivers left it (read-only use: the broker writes it). */
  openHost(): Promise<SimulatedKernel> {
    return openSimulatedSysfs({ fixture: this.fixture, stateFile: this.stateFile });
  }

  /** VF `n` of PF `i`, as the simulated kernel enabled it. */
  async vf(i: number, n: number): Promise<PciAddress> {
    const vfs = await (await this.openHost()).virtfns(pfAddress(i));
    const vf = vfs[n];
    if (vf === undefined) throw new Error(`PF ${pfAddress(i)} has no VF ${n} (it has ${vfs.length})`);
    return vf;
  }

  /**
   * Points the hooks at a copy of the host as a sysfs directory tree (the `driver` and `physfn`
   * links the hook reads), so they run the installed hook's production path (RealSysfs on /sys)
   * instead of loading the simulator. A snapshot: call it after the broker has brought the PFs up.
   */
  async mirrorHostForHooks(): Promise<void> {
    const root = join(this.dir, 'sys');
    await rm(root, { recursive: true, force: true });
    await writeHookSysfsTree(await this.openHost(), root);
    await this.#writeHookSettings({ root });
  }

  /** Whether the simulated kernel opens `vf` with `token`: the PF's driver set exactly that token. */
  async vfOpensWith(vf: PciAddress, token: string): Promise<boolean> {
    const host = await this.openHost();
    try {
      await host.vfio.closeDevice(await host.vfio.openDevice(`${vf} vf_token=${token}`));
      return true;
    } catch (err) {
      if (err instanceof KernelError && err.errno === 'EACCES') return false;
      throw err;
    }
  }

  /** The PIDs of this world's PF driver stand-ins that are still running. */
  async standIns(): Promise<number[]> {
    const pids: number[] = [];
    for (const name of await readdir('/proc')) {
      if (!/^[0-9]+$/.test(name)) continue;
      const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(join(this.dir, 'stand-ins'))) pids.push(Number(name));
    }
    return pids;
  }

  async untilNoStandIns(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if ((await this.standIns()).length === 0) return;
      await sleep(25);
    }
    throw new Error('the PF driver stand-ins did not exit after the broker died');
  }

  /** Stops the dbus-daemon and starts a new one on the same socket path (a `systemctl restart dbus`). */
  async restartBus(): Promise<void> {
    await this.bus.stop();
    this.bus = await startBus(this.dir);
  }

  async dispose(): Promise<void> {
    for (const c of this.#clients.splice(0)) c.close();
    await this.stopBroker().catch(() => undefined);
    for (const pid of await this.standIns()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.bus.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  #forget(client: BrokerClient): void {
    client.close();
    const i = this.#clients.indexOf(client);
    if (i >= 0) this.#clients.splice(i, 1);
  }

  async #writeFiles(): Promise<void> {
    const { pfCount, guests } = this.options;
    await writeFile(this.fixture, hostYaml(pfCount));
    const standIns = join(this.dir, 'stand-ins');
    await mkdir(standIns, { mode: 0o700 });
    const standIn = join(standIns, 'dpdk-pf-app');
    const host = { fixture: this.fixture, stateFile: this.stateFile };
    await writeStandIn(standIn, DPDK_STAND_IN, 'a DPDK PF application', host);
    const config: BrokerConfigInput = {
      hostId: this.options.vault?.hostId ?? 'reliability',
      store: this.options.vault
        ? {
            type: 'vault',
            address: this.options.vault.address,
            auth: { tokenFile: this.options.vault.tokenFile },
            requestTimeoutMs: this.options.vault.requestTimeoutMs ?? 1_000,
          }
        : { type: 'file', directory: join(this.dir, 'tokens') },
      sysfs: { simulator: host },
      stateDirectory: this.stateDirectory,
      runtimeDirectory: this.runtimeDirectory,
      pfs: Array.from({ length: pfCount }, (_, i) => ({
        address: pfAddress(i),
        plugin: 'igb',
        vfs: VFS_PER_PF,
        options: {
          command: [standIn, '-a', pfAddress(i), '--', '--forward-mode=io'],
          tokenVia: this.options.tokenVia?.[i] ?? 'argv',
          readyPattern: READY_PATTERN,
          startTimeoutMs: 20_000,
        },
        rotation: { drainTimeout: '10s' },
      })),
      ...(this.options.healthCheckInterval === undefined
        ? {}
        : { health: { checkInterval: this.options.healthCheckInterval } }),
      dbus: { busAddress: this.bus.address },
      hook: { brokerTimeoutMs: this.options.hookDeadlineMs ?? 5_000 },
      log: { level: this.options.logLevel ?? 'info' },
    };
    await writeFile(this.configPath, stringify(config), { mode: 0o600 });
    await writeFile(this.policyPath, policyYaml(guests), { mode: 0o600 });
    await this.#writeHookSettings({ simulator: host });
  }

  async #writeHookSettings(sysfs: HookSysfs): Promise<void> {
    const settings = {
      busAddress: this.bus.address,
      deadlineMs: this.options.hookDeadlineMs ?? 5_000,
      sysfs,
    };
    await writeFile(this.hookSettings, JSON.stringify(settings));
  }
}

/** The bus lives in the world's directory, so a restarted one listens on the same socket path. */
function startBus(dir: string): Promise<PrivateBus> {
  return startPrivateBus({ directory: join(dir, 'bus'), policy: 'current-user' });
}

export function pfAddress(i: number): PciAddress {
  return parsePciAddress(`0000:${(0x20 + i).toString(16).padStart(2, '0')}:00.0`);
}

/** 82576 PFs on igb, as in etc/vfbroker/simulated-host.yaml, at buses 0x20 onwards. */
function hostYaml(pfCount: number): string {
  const devices = Array.from({ length: pfCount }, (_, i) =>
    [
      `  - address: "${pfAddress(i)}"`,
      '    id: "8086:10c9"',
      '    class: "020000"',
      '    driver: igb',
      `    iommuGroup: ${i + 10}`,
      '    sriov: { totalVfs: 8, offset: 128, stride: 2, vfDevice: "10ca" }',
    ].join('\n'),
  );
  return [
    'description: vfbroker reliability host (82576 PFs)',
    'drivers: [igb, igbvf, vfio-pci]',
    'modules:',
    '  vfio_pci:',
    '    enable_sriov: Y',
    'devices:',
    ...devices,
    '',
  ].join('\n');
}

/** A rule per guest granted something; the others get nothing (default deny). */
function policyYaml(guests: readonly WorldGuest[]): string {
  const granted = guests.filter((g) => g.grants.length > 0);
  if (granted.length === 0) return 'rules: []\n';
  const rules = granted.flatMap((g) => [
    `  - guest: ${g.uuid}`,
    `    name: ${g.name}`,
    '    vfs:',
    ...g.grants.flatMap((grant) => [`      - pf: ${pfAddress(grant.pf)}`, `        vfs: [${grant.vf}]`]),
  ]);
  return ['rules:', ...rules, ''].join('\n');
}
