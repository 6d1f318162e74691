/**
 * The doctor's world in tests: a simulated host (sysfs simulator), broker.yaml as text, a broker
 * double behind the doctor's BrokerQuery, virsh and QEMU through the fake runner, and the kernel's
 * release, cdev and log as plain values. Each test starts from a healthy host and breaks one thing.
 *
 * The healthy host:
 * - 0000:3b:00.0 an 82576 PF on vfio-pci with 4 VFs (0000:3b:10.0, .2, .4, .6) on vfio-pci, its
 *   token set by a PF driver (a VFIO open with vf_token, as vfbroker's PF holder does);
 * - 0000:af:00.0 a ConnectX-5 PF on mlx5_core with 2 VFs (0000:af:00.2, .3): no token involved;
 * - 0000:5e:00.0 a second 82576, on igb, SR-IOV off, not in broker.yaml;
 * - 0000:65:00.0 a GPU.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PfSummary } from '../../../src/broker/api.js';
import { parseBrokerConfig } from '../../../src/config/broker-config.js';
import type { DoctorTarget } from '../../../src/doctor/context.js';
import { runDoctor, type DoctorReport } from '../../../src/doctor/doctor.js';
import type {
  BrokerQuery,
  ConfigOutcome,
  DoctorEnvironment,
  KernelLog,
} from '../../../src/doctor/environment.js';
import type { Finding } from '../../../src/doctor/finding.js';
import type { HookInstallation } from '../../../src/install/inspect.js';
import { programProbes } from '../../../src/doctor/programs.js';
import { toVfbError, VfbError } from '../../../src/errors.js';
import { parsePciAddress, type PciAddress } from '../../../src/pci/address.js';
import { SysfsSimulator } from '../../../src/sysfs/simulator.js';
import { FakeRunner } from '../../support/fake-runner.js';

export const PF = parsePciAddress('0000:3b:00.0');
export const VF0 = parsePciAddress('0000:3b:10.0');
export const VF1 = parsePciAddress('0000:3b:10.2');
export const CX5 = parsePciAddress('0000:af:00.0');
export const CX5_VF = parsePciAddress('0000:af:00.2');
export const UIO_PF = parsePciAddress('0000:5e:00.0');
export const GPU = parsePciAddress('0000:65:00.0');

/** The token the PF driver set on PF; guests that present it are current. */
export const TOKEN = '5b0c8e2a-7d41-4f3e-9a6b-1c2d3e4f5a6b';
export const OTHER_TOKEN = 'f0e1d2c3-b4a5-4968-8776-655443322110';
export const SECRETS = [TOKEN, OTHER_TOKEN];

export const CONFIG_PATH = '/etc/vfbroker/broker.yaml';

const HOST = `
description: doctor test host
drivers:
  - vfio-pci
  - igbvf
  - igb
  - mlx5_core
  - name: igb_uio
    ids: ["8086:10c9"]
    sriovConfigure: true
  - name: nvidia
    ids: ["10de:2330"]
modules:
  vfio_pci:
    enable_sriov: Y
devices:
  - { address: "0000:3b:00.0", id: "8086:10c9", class: "020000", driver: vfio-pci, driverOverride: vfio-pci, iommuGroup: 40,
      sriov: { totalVfs: 8, offset: 128, stride: 2, vfDevice: "10ca" } }
  - { address: "0000:5e:00.0", id: "8086:10c9", class: "020000", driver: igb, iommuGroup: 41,
      sriov: { totalVfs: 8, offset: 128, stride: 2, vfDevice: "10ca" } }
  - { address: "0000:af:00.0", id: "15b3:1017", class: "020000", driver: mlx5_core, iommuGroup: 42,
      sriov: { totalVfs: 8, offset: 2, stride: 1, vfDevice: "1018" } }
  - { address: "0000:65:00.0", id: "10de:2330", class: "030200", driver: nvidia, iommuGroup: 43 }
`;

export const CONFIG = `
hostId: node-7
store: { type: vault, address: "https://vault.example.net:8200", auth: { tokenFile: /etc/vfbroker/vault-token } }
pfs:
  - { address: "0000:3b:00.0", plugin: igb, vfs: 4 }
  - { address: "0000:af:00.0", plugin: mlx5, vfs: 2 }
`;

export const QEMU_8_2 =
  'QEMU emulator version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1.4)\nCopyright (c) 2003-2023 Fabrice Bellard and the QEMU Project developers\n';
export const QEMU_7_2 =
  'QEMU emulator version 7.2.0 (Debian 1:7.2+dfsg-7+deb12u6)\nCopyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n';

/** A simulated host as the broker leaves it: VFs enabled, PF's token set. */
export async function healthyHost(): Promise<SysfsSimulator> {
  const dir = await mkdtemp(join(tmpdir(), 'vfbroker-doctor-'));
  let sim: SysfsSimulator;
  try {
    const file = join(dir, 'host.yaml');
    await writeFile(file, HOST);
    sim = await SysfsSimulator.fromFixture(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await sim.writeAttribute(PF, 'sriov_numvfs', '4');
  await sim.writeAttribute(CX5, 'sriov_numvfs', '2');
  // The PF driver opens the PF with the token, which sets it (no VF is open yet), and keeps it open.
  await sim.vfio.openDevice(`${PF} vf_token=${TOKEN}`);
  return sim;
}

/** The rotation fields of a PF summary when no rotation is under way. */
export const NO_ROTATION = {
  activeSince: '',
  pendingGeneration: 0,
  rotationStep: '',
  waitingFor: '',
  drainDeadline: '',
} as const;

/** What the broker double answers for the healthy host. */
export function healthyPfs(): PfSummary[] {
  return [
    {
      address: PF,
      plugin: 'igb',
      state: 'up',
      numVfs: 4,
      needsToken: true,
      generation: 3,
      rotationMode: 'live',
      leases: 1,
      ...NO_ROTATION,
    },
    {
      address: CX5,
      plugin: 'mlx5',
      state: 'up',
      numVfs: 2,
      needsToken: false,
      generation: 0,
      rotationMode: 'none',
      leases: 0,
      ...NO_ROTATION,
    },
  ];
}

/** The broker, as far as the doctor sees it: Status and ListPfs, or no answer at all. */
export class BrokerDouble {
  reachable = true;
  storeReachable = true;
  pfs: PfSummary[] = healthyPfs();

  readonly connect = (): Promise<BrokerQuery> => {
    if (!this.reachable) {
      return Promise.reject(
        new VfbError(
          'UNAVAILABLE',
          'cannot connect to the system bus: connect ENOENT /run/dbus/system_bus_socket',
        ),
      );
    }
    return Promise.resolve({
      status: () =>
        Promise.resolve({
          version: '0.1.0',
          hostId: 'node-7',
          pfs: this.pfs.length,
          leases: this.pfs.reduce((n, p) => n + p.leases, 0),
          storeReachable: this.storeReachable,
          uptimeSeconds: 600,
        }),
      listPfs: () => Promise.resolve(this.pfs.map((p) => ({ ...p }))),
      close: () => undefined,
    });
  };
}

export interface GuestDeviceSpec {
  readonly address: PciAddress;
  readonly alias?: string;
  /** The vf-token the definition presents for the alias. */
  readonly token?: string;
  readonly iommufd?: boolean;
}

/** A persistent guest definition as `virsh dumpxml --inactive` prints it. */
export function domainXml(
  name: string,
  devices: readonly GuestDeviceSpec[],
  emulator = '/usr/bin/qemu-system-x86_64',
): string {
  const hex = (a: PciAddress) => {
    const [domain = '', bus = '', slotFn = ''] = a.split(':');
    const [slot = '', fn = ''] = slotFn.split('.');
    return `domain='0x${domain}' bus='0x${bus}' slot='0x${slot}' function='0x${fn}'`;
  };
  const hostdevs = devices.map(
    (d) => `    <hostdev mode='subsystem' type='pci' managed='yes'>
${d.iommufd ? "      <driver iommufd='yes'/>\n" : ''}      <source>
        <address ${hex(d.address)}/>
      </source>
${d.alias ? `      <alias name='${d.alias}'/>\n` : ''}    </hostdev>`,
  );
  const overrides = devices
    .filter((d) => d.alias !== undefined && d.token !== undefined)
    .map(
      (d) => `    <qemu:device alias='${d.alias ?? ''}'>
      <qemu:frontend>
        <qemu:property name='vf-token' type='string' value='${d.token ?? ''}'/>
      </qemu:frontend>
    </qemu:device>`,
    );
  return `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${name}</name>
  <uuid>0d2b8c7e-5a44-4f8e-bb2c-6f7e3b1d9a01</uuid>
  <memory unit='KiB'>4194304</memory>
  <os>
    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>
  </os>
  <devices>
    <emulator>${emulator}</emulator>
${hostdevs.join('\n')}
  </devices>
${overrides.length === 0 ? '' : `  <qemu:override>\n${overrides.join('\n')}\n  </qemu:override>\n`}</domain>
`;
}

export interface World {
  readonly sysfs: SysfsSimulator;
  readonly broker: BrokerDouble;
  readonly runner: FakeRunner;
  /** broker.yaml's text; null when the file cannot be read. */
  config: string | null;
  release: string;
  cdev: boolean;
  /** The simulator's log, or this when the log cannot be read. */
  kernelLog: KernelLog | 'simulator';
  /** Guest definitions by name. */
  readonly guests: Map<string, string>;
  /** What `vfbroker install --dry-run` would find of the hook; null on a simulated host. */
  hook: HookInstallation | null;
}

/** A healthy world: every check passes on it. */
export async function healthyWorld(): Promise<World> {
  const runner = new FakeRunner();
  const guests = new Map<string, string>([
    ['vm1', domainXml('vm1', [{ address: VF0, alias: 'ua-vf0', token: TOKEN }])],
  ]);
  runner.onRun('qemu-system-x86_64', { stdout: QEMU_8_2 });
  runner.onRun('virsh', (argv) => {
    const name = argv[argv.indexOf('--domain') + 1] ?? '';
    const xml = guests.get(name);
    return xml === undefined
      ? { code: 1, stderr: `error: failed to get domain '${name}'\n` }
      : { stdout: xml };
  });
  return {
    sysfs: await healthyHost(),
    broker: new BrokerDouble(),
    runner,
    config: CONFIG,
    release: '6.1.0-27-amd64',
    cdev: false,
    kernelLog: 'simulator',
    guests,
    hook: { hook: 'current', settings: 'current', cacheDirectory: 'current' },
  };
}

export function environment(world: World): DoctorEnvironment {
  return {
    sysfs: world.sysfs,
    config: configOutcome(world.config),
    kernelRelease: world.release,
    connectBroker: world.broker.connect,
    ...programProbes(world.runner),
    vfioCdevPresent: () => Promise.resolve(world.cdev),
    kernelLog: async () =>
      world.kernelLog === 'simulator'
        ? { readable: true, lines: await world.sysfs.readKernelLog() }
        : world.kernelLog,
    hookInstallation: () => Promise.resolve(world.hook),
  };
}

function configOutcome(text: string | null): ConfigOutcome {
  if (text === null) {
    return {
      path: CONFIG_PATH,
      error: new VfbError('CONFIG_INVALID', `${CONFIG_PATH}: cannot open the file (ENOENT)`, {
        hint: 'check that the file exists and that vfbroker may read it',
      }),
    };
  }
  try {
    return { path: CONFIG_PATH, config: parseBrokerConfig(text, CONFIG_PATH, { hostname: 'node-7' }) };
  } catch (err) {
    return { path: CONFIG_PATH, error: toVfbError(err) };
  }
}

export function doctor(world: World, target: DoctorTarget = { kind: 'host' }): Promise<DoctorReport> {
  return runDoctor(environment(world), target);
}

/** The findings of one check, in report order. */
export function only(report: DoctorReport, id: Finding['id']): Finding[] {
  return report.findings.filter((f) => f.id === id);
}

/** The one finding of a check for a subject; fails the test when there is not exactly one. */
export function one(report: DoctorReport, id: Finding['id'], subject: string | null = null): Finding {
  const found = report.findings.filter((f) => f.id === id && f.subject === subject);
  if (found.length !== 1) {
    throw new Error(
      `expected one ${id} finding for ${subject ?? 'the host'}, got ${found.length}: ${JSON.stringify(report.findings)}`,
    );
  }
  return found[0] as Finding;
}
