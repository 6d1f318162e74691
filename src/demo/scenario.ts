/**
 * `vfbroker demo`: the real broker (`vfbroker serve`) on a simulated host, with a private D-Bus
 * system bus, stand-ins for the PF drivers, and the libvirt hook run the way libvirt runs it, for
 * three example guests:
 *
 * 1. set-up: bus, broker.yaml, broker; the broker brings the PFs up with fresh tokens;
 * 2. the guests' definitions get their VFs and tokens as `vfbroker guest attach` writes them;
 * 3. each guest is started: the hook asks the broker at `prepare` (ok / token-stale / denied);
 * 4. the authorised guest runs and stops (`started`, `stopped`, `release`): its leases come and go;
 * 5. the 82576's token is rotated (drain: nobody holds a VF, so it applies at once); the guest is
 *    refused with token-stale until its definition is synced, then accepted again;
 * 6. everything is stopped and removed, unless --keep leaves it running.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PfSummary, Verdict } from '../broker/api.js';
import { BrokerClient } from '../dbus/client.js';
import type { PciAddress } from '../pci/address.js';
import { openSimulatedSysfs } from '../sysfs/persistent.js';
import { writeBrokerYaml } from './broker-yaml.js';
import { startBrokerProcess, type BrokerProcess } from './broker-process.js';
import { runVfbroker, vfbrokerCommand } from './cli.js';
import { AUTHORISED, defineGuest, STALE, syncGuest, UNAUTHORISED, type DemoGuest } from './guests.js';
import { checkHookBundle, HOOK_BUNDLE, runHook, writeHookSettings, type HookOp } from './hook.js';
import { ASSETS, DEMO_PFS, HOST_FIXTURE, IGB_PF, simulatedHost, type DemoPf } from './host.js';
import { lockDemo } from './lock.js';
import { shownPath } from '../package-root.js';
import { startPrivateBus, type PolicyFlavour } from './private-bus.js';
import type {
  DemoReport,
  GuestReport,
  HookStep,
  KeptReport,
  SetupReport,
  Step,
  StatusStep,
} from './report.js';
import { Teardown } from './teardown.js';
import type { Transcript } from './transcript.js';
import { createWorkspace, writeRecord, type Workspace } from './workspace.js';

export interface DemoOptions {
  readonly keep: boolean;
  readonly transcript: Transcript;
  /** For the one line a Ctrl-C deserves (stderr). */
  readonly notify: (line: string) => void;
}

const POLICY = join(ASSETS, 'policy.yaml');
const CALL_TIMEOUT_MS = 15_000;
/** The broker signals GuestRefused before it replies, so this only covers scheduling. */
const SIGNAL_WAIT_MS = 2_000;

export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  const ws = await createWorkspace();
  try {
    await lockDemo(ws.root);
  } catch (err) {
    await rm(ws.root, { recursive: true, force: true });
    throw err;
  }
  const teardown = new Teardown(ws, options.notify);
  let client: BrokerClient | null = null;
  try {
    const t = options.transcript;
    const { setup, broker } = await setUp(ws, teardown, t);
    client = await BrokerClient.connect({ address: setup.bus.address, callTimeoutMs: CALL_TIMEOUT_MS });
    await broker.ready(client);
    const report = await new Scenario(ws, t, client, setup).run();
    client.close();
    client = null;
    const kept = options.keep ? keep(ws, teardown, setup) : null;
    if (kept) t.kept(kept);
    else {
      await teardown.cleanUp();
      t.section('Cleaned up', `Every process the demo started is stopped and ${ws.root} is removed.`);
    }
    const done: DemoReport = { ...report, kept };
    t.document(done);
    return done;
  } catch (err) {
    client?.close();
    await teardown.cleanUp().catch(() => undefined);
    throw err;
  }
}

async function setUp(
  ws: Workspace,
  teardown: Teardown,
  t: Transcript,
): Promise<{ setup: SetupReport; broker: BrokerProcess }> {
  const uid = process.getuid?.() ?? 0;
  const flavour: PolicyFlavour = uid === 0 ? 'shipped' : 'current-user';
  t.section(
    'vfbroker demo: the broker on a simulated host (no root, Vault or hardware needed)',
    `Everything below lives in ${ws.root} and goes away at the end.`,
  );
  t.section(
    'Setting up',
    `- a simulated host (${shownPath(HOST_FIXTURE)}) that models the kernel's side: SR-IOV,`,
    '  vfio-pci and its VF-token rules, for three cards:',
    ...DEMO_PFS.map((pf) => `    ${pf.address}  ${pf.card}`),
    flavour === 'shipped'
      ? '- a private D-Bus system bus with vfbroker’s bus policy, as /etc/dbus-1/system.d/ would have it'
      : `- a private D-Bus system bus with a copy of vfbroker’s bus policy whose rules for root apply to you (uid ${uid})`,
    '- stand-ins for the PF drivers, acting on the simulated host: dpdk-pf-app for the igb plugin,',
    '  pf_bb_config for intel-fec (the ConnectX-5 keeps its kernel driver: no PF driver, no token)',
    '- the broker itself, `vfbroker serve`, keeping tokens in a file store instead of Vault:',
  );
  await checkHookBundle();
  const bus = await startPrivateBus({ directory: ws.bus, policy: flavour, detached: true });
  teardown.bus = bus;
  await writeBrokerYaml(ws, bus.address);
  await writeHookSettings(ws, bus.address, { simulator: simulatedHost(ws) });
  const broker = await startBrokerProcess(ws, POLICY);
  teardown.broker = broker;
  // From here on `vfbroker demo --stop` can clean up after this run, however it ends.
  await writeRecord(ws, { busAddress: bus.address, brokerPid: broker.pid, busPid: bus.pid });
  t.note(`  $ ${broker.argv.join(' ')}`);
  return {
    broker,
    setup: {
      directory: ws.root,
      fixture: HOST_FIXTURE,
      policy: POLICY,
      bus: { address: bus.address, policy: flavour, uid },
      broker: { pid: broker.pid, command: broker.argv },
    },
  };
}

function keep(ws: Workspace, teardown: Teardown, setup: SetupReport): KeptReport {
  teardown.leaveRunning();
  const self = vfbrokerCommand();
  return {
    directory: ws.root,
    busAddress: setup.bus.address,
    tryCommand: `${self} --bus ${setup.bus.address} token status`,
    hookCommand: `VFBROKER_HOOK_SETTINGS=${ws.hookSettings} ${HOOK_BUNDLE} vdu-1 prepare begin - < ${join(ws.guests, 'vdu-1.xml')}`,
    stopCommand: `${self} demo --stop ${ws.root}`,
  };
}

class Scenario {
  private readonly steps: Step[] = [];
  private readonly refused = new RefusalLog();

  constructor(
    private readonly ws: Workspace,
    private readonly t: Transcript,
    private readonly client: BrokerClient,
    private readonly setup: SetupReport,
  ) {}

  async run(): Promise<Omit<DemoReport, 'kept'>> {
    const { t, client, ws } = this;
    const unsubscribe = await client.subscribe({
      guestRefused: (uuid, vf, v) => this.refused.add(uuid, vf, v),
    });
    const pfs = await client.listPfs();
    t.section(
      'The broker brought the PFs up',
      'It generated a random token for each PF that needs one, kept it in its store, and started',
      'the PF driver with it; the driver opened the PF through VFIO, which set the token in the kernel.',
    );
    t.pfs(pfs, new Map(DEMO_PFS.map((pf) => [pf.address, pf.card])));

    const host = await openSimulatedSysfs(simulatedHost(ws));
    let vdu1 = await defineGuest(ws, AUTHORISED, host, client);
    const vdu2 = await defineGuest(ws, STALE, host, client);
    const scratch = await defineGuest(ws, UNAUTHORISED, host, client);
    const guests = [vdu1, vdu2, scratch];
    t.section(
      'Three guests',
      `Example definitions from ${shownPath(ASSETS)}/, their VFs added as \`vfbroker guest attach\` adds`,
      'them: a <hostdev>, and a <qemu:override> that hands QEMU the vf-token, fetched from the broker',
      `over D-Bus. ${shownPath(this.setup.policy)} grants vdu-1 and vdu-2 their VFs, scratch-vm none.`,
    );
    for (const g of guests) t.guest(guestReport(g));

    t.section(
      'libvirt starts each guest: the hook asks the broker at "prepare"',
      'The hook sends the guest’s UUID and each VF with the token its definition presents; anything',
      'but ok makes it exit 1, and libvirt refuses the start before QEMU runs, quoting the hook:',
    );
    await this.prepare(vdu1);
    await this.prepare(vdu2);
    await this.prepare(scratch);

    t.section(
      'vdu-1 runs, then shuts down',
      'At "started" the hook tells the broker (GuestStarted): the guest now holds its VFs (leases).',
    );
    await this.notify(vdu1, 'started');
    await this.tokenStatus();
    t.note('At "stopped" and "release" the hook tells the broker the guest let go (ReleaseGuest).');
    await this.notify(vdu1, 'stopped');
    await this.notify(vdu1, 'release', 'shutdown');
    await this.tokenStatus();

    t.section(
      `Rotating the ${IGB_PF.card}’s token`,
      'Its PF driver (a DPDK application) cannot take a new token while running, so rotation drains:',
      'it waits until no guest holds a VF of the PF, then restarts the driver with the new token.',
      'Nobody holds one now, so it applies at once.',
    );
    await this.rotate(IGB_PF, pfs);
    t.note('vdu-1’s definition still carries the old token:');
    await this.prepare(vdu1);
    t.note('`vfbroker guest sync vdu-1` writes the active token into its definition:');
    vdu1 = await syncGuest(vdu1, IGB_PF, client);
    this.push({
      kind: 'sync',
      guest: vdu1.name,
      pf: IGB_PF.address,
      generation: await this.generation(IGB_PF),
    });
    await this.prepare(vdu1);
    await this.notify(vdu1, 'started');

    await unsubscribe();
    return { setup: this.setup, pfs, guests: guests.map(guestReport), steps: this.steps };
  }

  private push(step: Step): void {
    this.steps.push(step);
    this.t.step(step);
  }

  private async prepare(guest: DemoGuest): Promise<void> {
    this.refused.forget(guest.uuid);
    const run = await runHook(this.ws, guest, 'prepare');
    const accepted = run.exitCode === 0;
    // One stderr line per refused VF; the broker's GuestRefused signal names each verdict.
    const lines = run.stderr === '' ? 0 : run.stderr.split('\n').length;
    const refusals = accepted ? [] : await this.refused.take(guest.uuid, lines, SIGNAL_WAIT_MS);
    const step: HookStep = {
      kind: 'hook',
      guest: guest.name,
      uuid: guest.uuid,
      args: run.args,
      exitCode: run.exitCode,
      outcome: accepted ? 'accepted' : 'refused',
      verdict: accepted ? 'ok' : (refusals[0]?.verdict ?? null),
      refusals,
      libvirtError: run.libvirtError,
    };
    this.push(step);
  }

  private async notify(guest: DemoGuest, op: Exclude<HookOp, 'prepare'>, extra?: string): Promise<void> {
    const run = await runHook(this.ws, guest, op, extra);
    this.push({
      kind: 'hook',
      guest: guest.name,
      uuid: guest.uuid,
      args: run.args,
      exitCode: run.exitCode,
      outcome: 'notified',
      verdict: null,
      refusals: [],
      libvirtError: null,
    });
  }

  private async tokenStatus(): Promise<void> {
    const json = this.t.json;
    const args = ['--bus', this.setup.bus.address, ...(json ? ['--json'] : []), 'token', 'status'];
    const stdout = await runVfbroker(args);
    const step: StatusStep = {
      kind: 'token-status',
      command: ['vfbroker', ...args],
      output: json ? [] : stdout.trimEnd().split('\n'),
      pfs: json ? (JSON.parse(stdout) as { pfs: PfSummary[] }).pfs : null,
    };
    this.push(step);
  }

  private async rotate(pf: DemoPf, pfs: readonly PfSummary[]): Promise<void> {
    const before = await this.generation(pf);
    const state = await this.client.rotate(pf.address);
    this.push({
      kind: 'rotate',
      pf: pf.address,
      mode: pfs.find((p) => p.address === pf.address)?.rotationMode ?? 'drain',
      state,
      generation: { before, after: await this.generation(pf) },
    });
  }

  private async generation(pf: DemoPf): Promise<number> {
    const pfs = await this.client.listPfs();
    return pfs.find((p) => p.address === pf.address)?.generation ?? 0;
  }
}

function guestReport(g: DemoGuest): GuestReport {
  return {
    name: g.name,
    uuid: g.uuid,
    story: g.story,
    definition: g.file,
    vfs: g.vfs.map((vf) => ({
      address: vf.address,
      pf: vf.pf.address,
      card: vf.pf.card,
      index: vf.index,
      token: vf.token,
    })),
  };
}

/** GuestRefused signals as they arrive, taken per guest. */
class RefusalLog {
  private readonly seen: { uuid: string; vf: PciAddress; verdict: Verdict }[] = [];

  add(uuid: string, vf: PciAddress, verdict: Verdict): void {
    this.seen.push({ uuid, vf, verdict });
  }

  forget(uuid: string): void {
    for (let i = this.seen.length - 1; i >= 0; i--) if (this.seen[i]?.uuid === uuid) this.seen.splice(i, 1);
  }

  /** The refusals of `uuid`, once `count` have arrived or the wait is over. */
  async take(uuid: string, count: number, waitMs: number): Promise<{ vf: PciAddress; verdict: Verdict }[]> {
    const mine = () => this.seen.filter((r) => r.uuid === uuid);
    for (let waited = 0; mine().length < count && waited < waitMs; waited += 20) await sleep(20);
    const found = mine().map(({ vf, verdict }) => ({ vf, verdict }));
    this.forget(uuid);
    return found;
  }
}
