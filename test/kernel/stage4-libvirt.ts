/**
 * Stage 4, in the guest as root: the full stack. libvirtd (the host's, from the shared /usr) runs
 * vfbroker's installed QEMU hook (/etc/libvirt/hooks/qemu.d/vfbroker, the bundle `vfbroker install`
 * copies, with /etc/vfbroker/hook.json naming the private bus); `vfbroker serve` brings the 82576 up
 * as in stage 3; `vfbroker guest attach` writes a VF's hostdev and its vf-token override into a guest
 * definition; `virsh start` makes libvirt run the hook and then an inner QEMU (TCG) that opens the VF
 * through the kernel with that token. A guest policy.yaml does not name, and a guest whose token went
 * stale with a rotation, are refused by the hook, whose line libvirt quotes in its error. libvirt's
 * status file of the running guest names its QEMU's pid, as SetNumVfs relies on.
 *
 *   node stage4-libvirt.js <PF>     the PF in any state an earlier stage may leave it in; igb loaded
 *
 * The hook bundle is <build>/hook/vfbroker-qemu-hook.cjs (scripts/build-hook.mjs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPrivateBus } from '../../src/demo/private-bus.js';
import { RunningGuests } from '../../src/libvirt/running-guests.js';
import { parsePciAddress, type PciAddress } from '../../src/pci/address.js';
import { VfioGroup } from '../../src/pfholder/group.js';
import { RealSysfs } from '../../src/sysfs/real.js';
import { isUuid } from '../../src/uuid.js';
import { restorePf } from '../cases/sysfs-cases.js';
import { captureLogs } from '../support/log-capture.js';
import { BrokerProcess, runCli, runProgram, type CliResult, type Identity } from './broker-process.js';
import { brokerConfig, checkReady } from './broker-stage.js';
import { CaseReport } from './report.js';
import { outcome } from './vf-user.js';

const report = new CaseReport('4');
const ROOT: Identity = { uid: 0, gid: 0 };
const CALL_TIMEOUT_MS = 240_000;
const LIBVIRTD_TIMEOUT_MS = 120_000;
/** sysexits EX_NOPERM: the CLI's exit status for DENIED (src/errors.ts). */
const EXIT_DENIED = 77;
const HOOK_BUNDLE = fileURLToPath(new URL('../../hook/vfbroker-qemu-hook.cjs', import.meta.url));
const GRANTED = { name: 'vm-granted', uuid: '6f1c7a52-0c1e-4d1b-9a57-8f3e0d1c2b3a' };
const STRANGER = { name: 'vm-stranger', uuid: '0b5e3c1d-7a2f-4e8b-9c6d-5f4a3b2c1d0e' };

// libvirt as the recipe runs it without systemd, polkit or virtlogd: root only, no cgroups or
// namespaces (the guest's initramfs has neither set up), QEMU's output to a file.
const LIBVIRTD_CONF = `unix_sock_group = "root"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_level = 3
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
`;
const QEMU_CONF = `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
`;

/** A guest with no devices but what libvirt insists on; the inner QEMU is started paused. */
function domainXml(guest: { name: string; uuid: string }): string {
  return `<domain type='qemu'>
  <name>${guest.name}</name>
  <uuid>${guest.uuid}</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

function policy(pf: PciAddress): string {
  return `rules:
  - guest: ${GRANTED.uuid}
    name: stage 4 guest
    vfs:
      - { pf: '${pf}', vfs: [1] }
`;
}

/** `exit N` and the first line of what a command said (stdout when it succeeded, stderr otherwise). */
function said(r: CliResult): string {
  const text = (r.code === 0 ? r.stdout : r.stderr).trim() || r.stdout.trim();
  // virsh puts the reason on the line after "error: Failed to start domain …": keep both.
  return `exit ${String(r.code)}, ${text
    .split('\n')
    .slice(0, r.code === 0 ? 1 : 3)
    .join(' ')}`;
}

/** The hook's own line inside libvirt's error, or what libvirt said instead. */
function hookRefusal(r: CliResult): string {
  const hook = /vfbroker: .*/.exec(r.stderr)?.[0];
  return hook === undefined ? `not refused by the hook (${said(r)})` : `refused by the hook: ${hook}`;
}

/** A start libvirt refused with the hook's line about the VF in its error; the line is the detail. */
async function refusedByHook(name: string, r: CliResult, vf: PciAddress, guest: string): Promise<void> {
  const expected = `exit 1, refused by the hook: vfbroker: VF ${vf}`;
  const got = `exit ${String(r.code)}, ${hookRefusal(r)}`;
  report.record(name, got.startsWith(expected), `expected ${expected}…, got ${got}`);
  // Started after all: stop it, so the cases after this one start from a stopped guest.
  if (r.code === 0) await runProgram('/usr/bin/virsh', ['-c', 'qemu:///system', 'destroy', guest], ROOT);
}

/** The directories libvirtd and the hook need, in the initramfs's empty /etc, /var and /run. */
async function prepareLibvirt(): Promise<void> {
  for (const d of [
    '/etc/libvirt/hooks/qemu.d',
    '/etc/vfbroker',
    '/var/log/libvirt/qemu',
    '/var/lib/libvirt/qemu',
    '/var/cache/libvirt/qemu',
    '/run/libvirt',
  ]) {
    await mkdir(d, { recursive: true });
  }
  // libvirt's paths are /var/run/libvirt/…, as on a Debian host where /var/run links to /run.
  await symlink('/run', '/var/run');
}

/** libvirtd in the background (no systemd: it makes its own sockets); resolves once they exist. */
async function startLibvirtd(): Promise<ChildProcess> {
  await writeFile('/etc/libvirt/libvirtd.conf', LIBVIRTD_CONF);
  await writeFile('/etc/libvirt/qemu.conf', QEMU_CONF);
  const out = openSync('/var/log/libvirt/libvirtd.stderr', 'w');
  const child = spawn('/usr/sbin/libvirtd', ['-f', '/etc/libvirt/libvirtd.conf'], {
    stdio: ['ignore', out, out],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' },
  });
  const deadline = Date.now() + LIBVIRTD_TIMEOUT_MS;
  while (!existsSync('/run/libvirt/libvirt-sock') && Date.now() < deadline && child.exitCode === null) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return child;
}

/**
 * What SetNumVfs trusts to recognise a guest's QEMU, against real libvirt: the status file it keeps
 * in /run/libvirt/qemu names the running guest's QEMU pid (found independently: the pid file QEMU
 * wrote, a process whose comm is QEMU's) with the guest's UUID, and names no other process.
 */
async function checkStatusFile(guest: { name: string; uuid: string }): Promise<void> {
  const logs = captureLogs('debug');
  const guests = new RunningGuests({ directory: '/run/libvirt/qemu', logger: logs.logger });
  const pid = Number((await readFile(`/run/libvirt/qemu/${guest.name}.pid`, 'utf8').catch(() => '')).trim());
  const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
  const found = await guests.byQemuPid(pid);
  const problems = logs.records().map((r) => JSON.stringify([r['msg'], r['problem']]));
  report.check(
    'status-file-names-qemu-pid',
    `qemu-system-x86 is ${guest.name} ${guest.uuid}`,
    `${comm || `pid ${pid}`} is ${found.found ? `${found.guest.name} ${found.guest.uuid}` : `no guest (${found.reason}; ${problems.join(', ')})`}`,
  );
  const self = await guests.byQemuPid(process.pid);
  report.check('status-file-names-no-other-pid', 'not found', self.found ? self.guest.name : 'not found');
}

async function main(pf: PciAddress): Promise<void> {
  const sysfs = new RealSysfs();
  await restorePf({ sysfs, pf, pfKernelDriver: 'igb', stubDriver: 'pci-pf-stub' });

  const dir = await mkdtemp('/tmp/vfb-stage4-');
  await chmod(dir, 0o755);
  const bus = await startPrivateBus({ directory: join(dir, 'bus'), policy: 'shipped' });
  const configPath = join(dir, 'broker.yaml');
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(configPath, brokerConfig(dir, bus.address, pf));
  await writeFile(policyPath, policy(pf));
  const outputs: string[] = [];
  // vfbroker's virsh define reads /dev/stdin, which cannot be opened when stdin is node's socketpair
  // (ENXIO; README, stage 4, bug 1). After the case that shows it, the CLI runs with a virsh
  // first on PATH that puts a pipe in between, so the cases after it still test the rest.
  const cliPath = '/usr/bin:/bin:/usr/sbin:/sbin';
  const cli = async (...args: string[]) => {
    const r = await runCli(
      [
        '--bus',
        bus.address,
        '--config',
        configPath,
        '--policy',
        policyPath,
        '--timeout',
        String(CALL_TIMEOUT_MS),
        ...args,
      ],
      ROOT,
      cliPath,
    );
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const virsh = async (...args: string[]) => {
    const r = await runProgram('/usr/bin/virsh', ['-c', 'qemu:///system', ...args], ROOT);
    outputs.push(r.stderr);
    return r;
  };

  // ---- the hook as `vfbroker install` lays it down, told where the private bus is
  await prepareLibvirt();
  await copyFile(HOOK_BUNDLE, '/etc/libvirt/hooks/qemu.d/vfbroker');
  await chmod('/etc/libvirt/hooks/qemu.d/vfbroker', 0o755);
  // The longest deadline the settings allow: under TCG the hook's own node start takes seconds.
  await writeFile(
    '/etc/vfbroker/hook.json',
    JSON.stringify({ busAddress: bus.address, deadlineMs: 120_000 }),
  );

  const broker = BrokerProcess.start(configPath, policyPath);
  let libvirtd: ChildProcess | null = null;
  const tokens: string[] = [];
  try {
    libvirtd = await startLibvirtd();
    const version = await virsh('version');
    report.check(
      'libvirtd-answers',
      'exit 0',
      `exit ${String(version.code)}${version.code === 0 ? '' : `: ${version.stderr.trim()}`}`,
    );
    await checkReady(report, 'broker-ready-pf-up', broker, pf, () => cli('pf', 'up', pf));
    const [, vf1] = await sysfs.virtfns(pf);
    if (vf1 === undefined) throw new Error('expected 2 VFs');
    const group = Number(await sysfs.iommuGroup(vf1));

    for (const guest of [GRANTED, STRANGER]) {
      const file = join(dir, `${guest.name}.xml`);
      await writeFile(file, domainXml(guest));
      const defined = await virsh('define', file);
      report.check(`define-${guest.name}`, 'exit 0', `exit ${String(defined.code)}`);
    }

    // ---- guest attach: the policy decides, the broker hands the token, virsh define writes it
    const direct = await cli('guest', 'attach', GRANTED.name, vf1);
    report.check(
      'guest-attach-defines-through-virsh',
      `exit 0, ${GRANTED.name}: VF ${vf1} attached with its vf-token`,
      said(direct).replace(/ \(.*\)$/, ''),
    );
    const refusedAttach = await cli('guest', 'attach', STRANGER.name, vf1);
    report.check('guest-attach-not-granted', `exit ${EXIT_DENIED}`, `exit ${String(refusedAttach.code)}`);
    const definition = await virsh('dumpxml', '--inactive', GRANTED.name);
    const token = /name='vf-token' type='string' value='([0-9a-f-]{36})'/.exec(definition.stdout)?.[1];
    if (token !== undefined) tokens.push(token);
    report.check(
      'definition-carries-the-token',
      'a token',
      token !== undefined && isUuid(token) ? 'a token' : 'none',
    );

    // ---- the granted guest starts: libvirt ran the hook, QEMU opened the VF with the token
    const started = await virsh('start', '--paused', GRANTED.name);
    report.check('start-granted-guest', 'exit 0', said(started).replace(/, Domain .*/, ''));
    report.check(
      'vf-group-held-by-inner-qemu',
      'EBUSY',
      outcome(() => VfioGroup.open(group).close()),
    );
    await checkStatusFile(GRANTED);
    report.check(
      'destroy-granted-guest',
      'exit 0',
      `exit ${String((await virsh('destroy', GRANTED.name)).code)}`,
    );

    // ---- a guest the policy does not name, given the same hostdev and token: the hook refuses it
    if (token !== undefined) {
      const copy = definition.stdout
        .replace(/<name>[^<]*<\/name>/, `<name>${STRANGER.name}</name>`)
        .replace(/<uuid>[^<]*<\/uuid>/, `<uuid>${STRANGER.uuid}</uuid>`);
      const file = join(dir, 'stranger-with-token.xml');
      await writeFile(file, copy, { mode: 0o600 });
      await virsh('define', file);
    }
    const stranger = await virsh('start', '--paused', STRANGER.name);
    await refusedByHook('start-stranger-refused-by-hook', stranger, vf1, STRANGER.name);

    // ---- rotation, then the definition as it was before it (a restored backup: the broker may
    // have synced the live one itself): its token is stale, the hook refuses; guest sync mends it
    const rotated = await cli('token', 'rotate', pf);
    report.check('token-rotate', `exit 0, ${pf}: done`, said(rotated));
    const before = join(dir, 'granted-before-rotation.xml');
    await writeFile(before, definition.stdout, { mode: 0o600 });
    report.check(
      'define-pre-rotation-definition',
      'exit 0',
      `exit ${String((await virsh('define', before)).code)}`,
    );
    const stale = await virsh('start', '--paused', GRANTED.name);
    await refusedByHook('start-stale-token-refused-by-hook', stale, vf1, GRANTED.name);
    const synced = await cli('guest', 'sync', GRANTED.name);
    report.check(
      'guest-sync',
      'exit 0',
      `exit ${String(synced.code)}${synced.code === 0 ? '' : `: ${synced.stderr.trim()}`}`,
    );
    const fresh = /name='vf-token' type='string' value='([0-9a-f-]{36})'/.exec(
      (await virsh('dumpxml', '--inactive', GRANTED.name)).stdout,
    )?.[1];
    if (fresh !== undefined) tokens.push(fresh);
    report.check(
      'sync-wrote-a-new-token',
      'new',
      fresh !== undefined && fresh !== token ? 'new' : 'unchanged',
    );
    const again = await virsh('start', '--paused', GRANTED.name);
    report.check('start-after-sync', 'exit 0', said(again).replace(/, Domain .*/, ''));
    report.check(
      'vf-group-held-after-sync',
      'EBUSY',
      outcome(() => VfioGroup.open(group).close()),
    );
    await virsh('destroy', GRANTED.name);
    report.check('broker-stops', '0', String(await broker.stop()));
  } finally {
    if (libvirtd !== null && libvirtd.exitCode === null) libvirtd.kill('SIGTERM');
    if (broker.running) await broker.stop();
    await bus.stop();
  }

  const logs = await Promise.all(
    // Not the guest's QEMU log: libvirt writes QEMU's command line there, vf-token included.
    ['/var/log/libvirt/libvirtd.log', '/var/log/libvirt/libvirtd.stderr'].map((f) =>
      readFile(f, 'utf8').catch(() => ''),
    ),
  );
  report.checkNoTokens('no-token-in-output', [broker.output, ...outputs, ...logs].join('\n'), tokens);
  if (report.failures > 0) {
    process.stdout.write(
      `stage 4 libvirtd log follows\n${logs.join('\n')}\nbroker log follows\n${broker.output}\n`,
    );
  }
}

await report.run(() => main(parsePciAddress(process.argv[2] ?? '')));
