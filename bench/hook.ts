/**
 * `npm run bench:hook`: whole-process wall time of the installed libvirt hook — the bundle
 * dist/hook/vfbroker-qemu-hook.cjs run as libvirt runs it: as an executable (its shebang names
 * node), argv `<name> prepare begin -`, the domain XML on stdin, libvirt's environment only
 * (LC_ALL=C, PATH, HOME, USER, LOGNAME, TMPDIR) plus VFBROKER_HOOK_SETTINGS naming a settings file
 * with the private bus and the simulated host, and VFBROKER_HOOK_CODE_CACHE naming the code cache the
 * installed hook keeps in /var/cache/vfbroker (the warm-up runs write it), and stdin a pipe, as
 * libvirt gives it.
 *
 * Measured at `prepare` for a guest with 8 VF hostdevs carrying the right vf-tokens (one D-Bus
 * round trip to a warm broker, which must accept all 8) and for a guest without VFs (no D-Bus at
 * all), each as a ratio to `node -e 0` measured in the same run; and the floor under any Node hook
 * (support/dbus-floor.ts: node:net, the bus, one Ping to the broker), which says how much of the
 * ratio is Node's and the bus's. All are interleaved, in rotating order, so that load on the machine
 * falls on all of them alike. Prints figures; asserts nothing about them.
 */
import { constants } from 'node:fs';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBrokerChild, type BrokerChild } from './support/broker-process.js';
import { catchInterrupt, runBench, throwIfInterrupted } from './support/interrupt.js';
import { header, machineLoad, ms, percentile, table, verdict } from './support/report.js';
import { benchGuest, type BenchGuest, type Scenario } from './support/scenario.js';
import { writeDbusFloorProgram } from './support/dbus-floor.js';
import { timedRun, type TimedRun } from './support/timed-process.js';
import { startPrivateBus, type PrivateBus } from '../src/demo/private-bus.js';
import { BrokerClient } from '../src/dbus/client.js';
import { unixSocketPath } from '../src/dbus/connection.js';
import { VfbError } from '../src/errors.js';
import { pfAddress, vfAddress } from '../test/support/broker-world.js';

/** The bundle as `npm run build` lays it out next to the compiled benches. */
const BUNDLE = fileURLToPath(new URL('../hook/vfbroker-qemu-hook.cjs', import.meta.url));
/** A host small enough that the hook's simulated sysfs costs what reading /sys would, roughly. */
const SCENARIO: Scenario = { pfCount: 2, vfs: 8, guests: 2 };
const RUNS = 60;
const WARM_UP = 3;
const LIBVIRT_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'TMPDIR'] as const;
const TARGET = { median: 1.3, p99: 2 } as const;

/** What one timed run starts: `node -e 0`; the floor (dbus-floor.ts: node, the bus, one Ping to the
 * broker); or the hook for the guest with 8 VFs (its host read from a /sys-like tree, as on a real
 * host, or from the simulator's state file) or for the guest without. */
type Subject = 'node' | 'floor' | 'tree' | 'simulator' | 'plain';

/** A libvirt domain XML: `vfs` VF hostdevs with user aliases, their vf-tokens in <qemu:override>. */
function domainXml(guest: BenchGuest, vfs: number, token: string): string {
  const hostdevs: string[] = [];
  const overrides: string[] = [];
  for (const [i, n] of guest.vfIndexes.slice(0, vfs).entries()) {
    const [domain, bus, slotFn] = vfAddress(guest.pf, n).split(':') as [string, string, string];
    const [slot, fn] = slotFn.split('.') as [string, string];
    hostdevs.push(
      `    <hostdev mode='subsystem' type='pci' managed='yes'>`,
      `      <source><address domain='0x${domain}' bus='0x${bus}' slot='0x${slot}' function='0x${fn}'/></source>`,
      `      <alias name='ua-vf${i}'/>`,
      `    </hostdev>`,
    );
    overrides.push(
      `    <qemu:device alias='ua-vf${i}'><qemu:frontend>`,
      `      <qemu:property name='vf-token' type='string' value='${token}'/>`,
      `    </qemu:frontend></qemu:device>`,
    );
  }
  return [
    `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>`,
    `  <name>${guest.name}</name>`,
    `  <uuid>${guest.uuid}</uuid>`,
    `  <memory unit='KiB'>8388608</memory>`,
    `  <vcpu placement='static'>4</vcpu>`,
    `  <os><type arch='x86_64' machine='pc-q35-8.2'>hvm</type></os>`,
    `  <devices>`,
    `    <emulator>/usr/bin/qemu-system-x86_64</emulator>`,
    `    <disk type='file' device='disk'>`,
    `      <driver name='qemu' type='qcow2'/>`,
    `      <source file='/var/lib/libvirt/images/${guest.name}.qcow2'/>`,
    `      <target dev='vda' bus='virtio'/>`,
    `    </disk>`,
    `    <interface type='network'><source network='default'/><model type='virtio'/></interface>`,
    ...hostdevs,
    `  </devices>`,
    ...(overrides.length === 0 ? [] : ['  <qemu:override>', ...overrides, '  </qemu:override>']),
    `</domain>`,
    '',
  ].join('\n');
}

async function checkBundle(): Promise<void> {
  try {
    await access(BUNDLE, constants.X_OK);
  } catch {
    throw new VfbError('NOT_FOUND', `no executable hook bundle at ${BUNDLE}`, {
      hint: `build it: npm run build (or node scripts/build-hook.mjs --outfile ${BUNDLE})`,
    });
  }
}

/** libvirt's environment, plus where this run's settings and code cache are (libvirt passes neither). */
function libvirtEnv(settingsFile: string, codeCache: string): Record<string, string> {
  const env: Record<string, string> = { LC_ALL: 'C' };
  for (const name of LIBVIRT_ENV) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, VFBROKER_HOOK_SETTINGS: settingsFile, VFBROKER_HOOK_CODE_CACHE: codeCache };
}

function report(times: ReadonlyMap<Subject, readonly number[]>): string {
  const node = times.get('node') ?? [];
  const ratios = (subject: Subject) => {
    const t = times.get(subject) ?? [];
    const median = percentile(t, 50);
    const p99 = percentile(t, 99);
    return { median, p99, medianRatio: median / percentile(node, 50), p99Ratio: p99 / percentile(node, 99) };
  };
  const row = (label: string, subject: Subject) => {
    const r = ratios(subject);
    return [label, ms(r.median), ms(r.p99), `${r.medianRatio.toFixed(2)}×`, `${r.p99Ratio.toFixed(2)}×`];
  };
  const against = (label: string, subject: Subject) => {
    const r = ratios(subject);
    return (
      `  ${label}: median ${r.medianRatio.toFixed(2)}× node -e 0 (target ≤ ${TARGET.median}×: ${verdict(r.medianRatio <= TARGET.median)}), ` +
      `p99 ${r.p99Ratio.toFixed(2)}× (target ≤ ${TARGET.p99}×: ${verdict(r.p99Ratio <= TARGET.p99)})`
    );
  };
  return [
    table([
      ['', 'median ms', 'p99 ms', 'median ratio', 'p99 ratio'],
      row('node -e 0', 'node'),
      row('floor: node + bus + one Ping to the broker', 'floor'),
      row('hook, 8 VFs, host in a /sys-like tree', 'tree'),
      row('hook, 8 VFs, host in the simulator', 'simulator'),
      row('hook, no VF (no D-Bus, no sysfs)', 'plain'),
    ]),
    '',
    against('8 VFs, /sys-like tree (what a real host costs)', 'tree'),
    against('8 VFs, simulator (the simulated host of the demo and tests)', 'simulator'),
    `  floor: the least any Node hook pays for one broker round trip — node:net, connecting, authenticating, Hello, one Ping — is ${ratios('floor').medianRatio.toFixed(2)}× node -e 0`,
    `  at the end: ${machineLoad()}`,
    '',
  ].join('\n');
}

async function writeSettings(file: string, busAddress: string, sysfs: unknown): Promise<string> {
  await writeFile(file, JSON.stringify({ busAddress, deadlineMs: 5000, sysfs }), { mode: 0o600 });
  return file;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new VfbError('DENIED', 'bench:hook must run as root', {
      hint: 'PrepareGuest is for root only, and the bus runs the shipped policy, which names root',
    });
  }
  await checkBundle();
  process.stdout.write(
    header('hook bench: the installed qemu hook at prepare, whole process, run as libvirt runs it', [
      `hook: ${BUNDLE} (executable, shebang node), libvirt's environment + VFBROKER_HOOK_SETTINGS`,
      `broker: warm, child process, on a private dbus-daemon with the shipped bus policy; host ${SCENARIO.pfCount} PFs × ${SCENARIO.vfs} VFs (simulated)`,
      `runs: ${RUNS} of each (after ${WARM_UP} warm-up runs), interleaved with node -e 0 in rotating order`,
      `targets: 8 VFs median ≤ ${TARGET.median}× and p99 ≤ ${TARGET.p99}× node -e 0`,
    ]),
  );
  const interrupt = catchInterrupt();
  const dir = await mkdtemp(join(tmpdir(), 'vfb-bench-hook-'));
  let bus: PrivateBus | undefined;
  let broker: BrokerChild | undefined;
  let client: BrokerClient | undefined;
  try {
    bus = await startPrivateBus({ directory: join(dir, 'bus'), policy: 'shipped' });
    broker = await startBrokerChild(
      { busAddress: bus.address, scenario: SCENARIO, hostDir: join(dir, 'host') },
      { logFile: join(dir, 'broker.log') },
    );
    const { host } = broker;
    if (host === null) throw new VfbError('INTERNAL', 'the bench broker did not save its host');
    // One code cache, as the installed hook has in /var/cache/vfbroker: the warm-up runs write it.
    const codeCache = join(dir, 'qemu-hook.v8');
    const env = {
      tree: libvirtEnv(
        await writeSettings(join(dir, 'hook-tree.json'), bus.address, { root: host.sysRoot }),
        codeCache,
      ),
      simulator: libvirtEnv(
        await writeSettings(join(dir, 'hook-sim.json'), bus.address, { simulator: host.simulator }),
        codeCache,
      ),
    };
    client = await BrokerClient.connect({ address: bus.address });
    const guest = benchGuest(SCENARIO, 0);
    const token = await client.getToken(pfAddress(guest.pf));
    const argv = [guest.name, 'prepare', 'begin', '-'];
    const withVfs = domainXml(guest, 8, token);
    const plain = domainXml(guest, 0, token);
    const c = client;
    const floor = writeDbusFloorProgram(dir, unixSocketPath(bus.address));

    const run = async (subject: Subject): Promise<TimedRun> => {
      if (subject === 'node') return timedRun(process.execPath, ['-e', '0'], env.tree, null);
      if (subject === 'floor') {
        const result = await timedRun(process.execPath, [floor], env.tree, null);
        if (result.exitCode !== 0)
          throw new VfbError('INTERNAL', 'the floor program did not reach the broker');
        return result;
      }
      const result =
        subject === 'plain'
          ? await timedRun(BUNDLE, argv, env.tree, plain)
          : await timedRun(BUNDLE, argv, env[subject], withVfs);
      if (result.exitCode !== 0) {
        throw new VfbError('INTERNAL', `the hook refused the bench guest (exit ${result.exitCode})`, {
          hint: result.stderr.split('\n')[0] ?? '',
        });
      }
      if (subject !== 'plain') {
        // The run only counts if the broker was asked and accepted all 8; then the guest "stops".
        const { leases } = await c.status();
        if (leases !== 8) throw new VfbError('INTERNAL', `the broker holds ${leases} leases, not 8`);
        await c.releaseGuest(guest.uuid, 'shutdown');
      }
      return result;
    };

    const order: readonly Subject[] = ['tree', 'node', 'simulator', 'plain', 'floor'];
    const times = new Map<Subject, number[]>(order.map((s) => [s, []]));
    for (let i = 0; i < WARM_UP; i++) for (const s of order) await run(s);
    await access(codeCache).catch(() => {
      throw new VfbError('INTERNAL', `the warm-up runs wrote no code cache at ${codeCache}`);
    });
    for (let i = 0; i < RUNS && !interrupt.stopped; i++) {
      for (let k = 0; k < order.length; k++) {
        const subject = order[(i + k) % order.length] as Subject;
        times.get(subject)?.push((await run(subject)).ms);
      }
    }
    if (!interrupt.stopped) process.stdout.write(report(times));
  } catch (err) {
    // A Ctrl-C also stops the bus and the broker, so calls fail: that is the interruption, not an error.
    if (!interrupt.stopped) throw err;
  } finally {
    client?.close();
    await broker?.stop();
    await bus?.stop();
    await rm(dir, { recursive: true, force: true });
    interrupt.dispose();
  }
  throwIfInterrupted(interrupt);
}

await runBench('bench:hook', main);
