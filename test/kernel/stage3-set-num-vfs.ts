/**
 * Stage 3's SetNumVfs cases (issue 11 §3): the VF count of the real PF changed through the broker, by
 * root and by the consumer policy.yaml names as the PF's owner, and refused to a stranger, while a
 * guest holds a VF, for a count the device cannot take, and while an application holds a VF open.
 * The broker runs with the PF up on vfio-pci at 2 VFs, and the stage holds VF 1 open as an
 * application would (DPDK: a token from GetToken, no lease). The kernel would make a removal of the
 * VFs wait for it with no limit; the broker asks the kernel first (the VF's VFIO group answers EBUSY
 * to an open) and refuses at once.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { BrokerClient } from '../../src/dbus/client.js';
import type { PciAddress } from '../../src/pci/address.js';
import { VfioGroup } from '../../src/pfholder/group.js';
import { closeFd } from '../../src/pfholder/vfio.js';
import { isVfbError } from '../../src/errors.js';
import { errnoOfRefusal } from '../../src/sysfs/errno.js';
import type { Sysfs } from '../../src/sysfs/sysfs.js';
import { runProgram, type BrokerProcess, type Identity } from './broker-process.js';
import { holderState } from './broker-stage.js';
import { OWNER_CALL_MAIN, setNumVfsAnswer } from './owner-call.js';
import type { CaseReport } from './report.js';
import { configIds, outcome } from './vf-user.js';

/** vfio-pci's words when a device it must give up is open and its user asked for no notification. */
const BLOCKED = 'No device request channel registered, blocked until released by user';

export interface SetNumVfsContext {
  readonly report: CaseReport;
  readonly sysfs: Sysfs;
  readonly pf: PciAddress;
  readonly busAddress: string;
  readonly broker: BrokerProcess;
  readonly callTimeoutMs: number;
  /** Named as the PF's owner in policy.yaml. */
  readonly owner: Identity;
  /** Named nowhere in policy.yaml. */
  readonly stranger: Identity;
  /** A guest policy.yaml grants VF 1. */
  readonly guest: { readonly uuid: string; readonly name: string };
  /** The PF's active token. */
  readonly token: string;
  /** The PF holder's pid now. */
  readonly holderPid: number | null;
  /** VF 1, open in this process through `heldFd`; `closeHeldVf` closes it and its group. */
  readonly heldVf: PciAddress;
  readonly heldFd: number;
  readonly closeHeldVf: () => void;
  /** What the calls printed and the tokens they saw, for the stage's no-token check. */
  readonly outputs: string[];
  readonly tokens: string[];
}

export async function setNumVfsCases(c: SetNumVfsContext): Promise<void> {
  const { report, sysfs, pf } = c;
  const client = await BrokerClient.connect({ address: c.busAddress, callTimeoutMs: c.callTimeoutMs });
  const asRoot = async (count: number) => {
    const answer = await setNumVfsAnswer(client, pf, count);
    c.outputs.push(answer);
    return answer;
  };
  const asUser = async (who: Identity, count: number) => {
    const r = await runProgram(
      process.execPath,
      [OWNER_CALL_MAIN, c.busAddress, pf, String(count), String(c.callTimeoutMs)],
      who,
    );
    c.outputs.push(r.stdout, r.stderr);
    return r.code === 0 ? r.stdout.trim() : `exit ${String(r.code)}: ${r.stderr.trim().split('\n')[0] ?? ''}`;
  };
  try {
    // ---- refused, and nothing changes: a stranger; the owner while a guest holds VF 1; too many VFs
    const layout = async () => `${await census(sysfs, pf)}; ${(await sysfs.virtfns(pf)).join(' ')}`;
    const before = await layout();
    const [lease] = await client.prepareGuest(c.guest.uuid, c.guest.name, [
      { address: c.heldVf, presentedToken: c.token },
    ]);
    report.check('guest-lease-on-vf-1', 'ok', lease?.verdict ?? 'no verdict');
    const [stranger, leased] = await Promise.all([asUser(c.stranger, 3), asUser(c.owner, 3)]);
    report.check(
      'set-num-vfs-stranger-denied',
      `DENIED: uid ${c.stranger.uid} may not set the VF count of ${pf}: no owner rule lets uid ` +
        `${c.stranger.uid} (outside any systemd unit) set the VF count of PF ${pf} (default deny)`,
      stranger,
    );
    report.check(
      'set-num-vfs-refused-while-a-guest-holds-a-vf',
      `BUSY: PF ${pf} has VFs in use by ${c.guest.name}; changing its VF count would remove them`,
      leased,
    );
    await client.releaseGuest(c.guest.uuid, 'shutdown');
    const total = Number(await sysfs.readAttribute(pf, 'sriov_totalvfs'));
    report.check('sriov-totalvfs-on-vfio-pci', '8', String(total));
    report.check(
      'set-num-vfs-above-totalvfs-refused',
      `INVALID_ARGUMENT: PF ${pf} (8086:10c9): ${total + 1} VFs requested, the device offers ${total} (sriov_totalvfs)`,
      await asRoot(total + 1),
    );
    report.check('vfs-unchanged-by-the-refusals', before, await layout());
    report.check('held-vf-usable-after-the-refusals', '8086:10ca', configIds(c.heldFd, c.heldVf));

    // ---- root: 2 → 4. The kernel refuses that directly; the broker goes through 0. Removing the VFs
    // would wait, with no limit, for the application that holds VF 1 open ("blocked until released
    // by user"), so the broker refuses at once, names the VF and changes nothing
    report.check(
      'kernel-refuses-2-to-4-directly',
      'EBUSY',
      await writeOutcome(sysfs.writeAttribute(pf, 'sriov_numvfs', '4')),
    );
    const kernelMark = (await kernelLog()).at(-1) ?? '';
    let logMark = c.broker.logMark();
    const held = `/dev/vfio/${String(await sysfs.iommuGroup(c.heldVf))}`;
    const open =
      `VF 1 ${c.heldVf} is open (VFIO group ${held} is held by a process, a DPDK application or QEMU); ` +
      'close it first: the kernel would wait for it';
    report.check(
      'set-num-vfs-refused-while-an-application-holds-a-vf',
      `BUSY: PF ${pf} cannot remove its 2 VFs (the count changes from 2 to 4 and the kernel needs 0 in between): ${open}`,
      await asRoot(4),
    );
    report.check(
      'pf-down-refused-while-an-application-holds-a-vf',
      `BUSY: PF ${pf} cannot remove its 2 VFs: ${open}`,
      await answerOf(client.pfDown(pf, false)),
    );
    report.check('busy-refusals-wrote-nothing', 'none', numVfsWrites(c.broker, logMark));
    report.check('vfs-unchanged-by-the-busy-refusals', before, await layout());
    report.check('held-vf-usable-after-the-busy-refusals', '8086:10ca', configIds(c.heldFd, c.heldVf));
    const [pfs, holderNow] = await Promise.all([client.listPfs(), holderState(c.busAddress, pf)]);
    const served = pfs.find((p) => p.address === pf);
    report.check(
      'broker-still-serves-the-pf',
      'up, 2 VFs; up, PF open, token set, same holder',
      `${served?.state ?? 'absent'}, ${served?.numVfs} VFs; ` +
        `${holderNow.words}, ${holderNow.pid === c.holderPid ? 'same holder' : 'new holder'}`,
    );

    // ---- the application closes VF 1 (group, then device fd): the same call goes through
    c.closeHeldVf();
    logMark = c.broker.logMark();
    report.check('set-num-vfs-goes-through-once-the-vf-is-closed', 'OK', await asRoot(4));
    report.check('set-num-vfs-went-through-0', '2 → 0, 0 → 4', numVfsWrites(c.broker, logMark));
    const blocked = (await kernelLinesSince(kernelMark)).filter((l) => l.includes(BLOCKED));
    report.check('no-vf-removal-waited-for-a-user', 'none', blocked.join('; ') || 'none');
    report.check('vfs-after-set-num-vfs', allOwnOnVfio(4), await census(sysfs, pf));
    const holder = await holderState(c.busAddress, pf);
    report.check(
      'holder-kept-the-pf-open',
      'up, PF open, token set, same holder',
      `${holder.words}, ${holder.pid === c.holderPid ? 'same holder' : 'new holder'}`,
    );
    const listed = (await client.listPfs()).find((p) => p.address === pf);
    report.check(
      'broker-lists-the-new-count',
      'up, 4 VFs',
      `${listed?.state ?? 'absent'}, ${listed?.numVfs} VFs`,
    );

    // ---- a new VF opens with the PF's token, which the change left as it was
    const newVf = (await sysfs.virtfns(pf))[3];
    if (newVf === undefined) throw new Error('no VF 3 to open');
    const token = await client.getToken(newVf);
    c.tokens.push(token);
    report.check('new-vf-token-is-the-pfs', 'unchanged', token === c.token ? 'unchanged' : 'changed');
    const group = VfioGroup.open(Number(await sysfs.iommuGroup(newVf)));
    try {
      const openWith = (t?: string) => outcome(() => closeFd(group.openDevice(newVf, t)));
      report.check('new-vf-open-without-token', 'EACCES', openWith());
      report.check('new-vf-open-wrong-token', 'EACCES', openWith(randomUUID()));
      report.check('new-vf-open-with-the-pf-token', 'OK', openWith(token));
    } finally {
      group.close();
    }

    // ---- the owner policy.yaml names: 4 → 2, served like root
    logMark = c.broker.logMark();
    report.check('set-num-vfs-by-the-owner', 'OK', await asUser(c.owner, 2));
    report.check('owner-allowed-by-its-rule', 'allowed by owners[0]', auditReason(c.broker, logMark));
    report.check('owner-change-went-through-0', '4 → 0, 0 → 2', numVfsWrites(c.broker, logMark));
    report.check('vfs-after-the-owners-change', allOwnOnVfio(2), await census(sysfs, pf));
  } finally {
    client.close();
  }
}

/** The VFs of a PF as the kernel shows them, in words without addresses. */
async function census(sysfs: Sysfs, pf: PciAddress): Promise<string> {
  const vfs = await sysfs.virtfns(pf);
  const [physfns, drivers] = await Promise.all([
    Promise.all(vfs.map((vf) => sysfs.physfn(vf))),
    Promise.all(vfs.map((vf) => sysfs.driver(vf))),
  ]);
  const numVfs = await sysfs.readAttribute(pf, 'sriov_numvfs');
  return (
    `sriov_numvfs ${numVfs}, ${vfs.length} VFs, ` +
    `${physfns.filter((p) => p === pf).length} with physfn → PF, ${drivers.filter((d) => d === 'vfio-pci').length} on vfio-pci`
  );
}

/** census() of a PF with `n` VFs, all of them its own and on vfio-pci. */
function allOwnOnVfio(n: number): string {
  return `sriov_numvfs ${n}, ${n} VFs, ${n} with physfn → PF, ${n} on vfio-pci`;
}

/** The sriov_numvfs writes the broker logged as plan steps since `mark`: `2 → 0, 0 → 4`. */
function numVfsWrites(broker: BrokerProcess, mark: number): string {
  const writes = broker
    .logLinesSince(mark)
    .filter((l) => l['step'] === 'remove-vfs' || l['step'] === 'enable-vfs')
    .map((l) => /sriov_numvfs (\d+ → \d+)/.exec(String(l['msg']))?.[1] ?? String(l['msg']));
  return writes.length === 0 ? 'none' : writes.join(', ');
}

/** The reason of the SetNumVfs audit line since `mark`, without the file and line it cites. */
function auditReason(broker: BrokerProcess, mark: number): string {
  const line = broker.logLinesSince(mark).find((l) => l['event'] === 'set-num-vfs' && 'allowed' in l);
  return line === undefined ? 'no audit line' : String(line['reason']).replace(/ in \S+:\d+$/, '');
}

/** `OK`, or the errno of a refused sysfs write. */
async function writeOutcome(write: Promise<void>): Promise<string> {
  try {
    await write;
    return 'OK';
  } catch (err) {
    const errno = errnoOfRefusal(err);
    if (errno === undefined) throw err;
    return errno;
  }
}

/** busybox dmesg: the whole ring buffer, oldest line first, without the empty last line. */
async function kernelLog(): Promise<string[]> {
  const { stdout } = await promisify(execFile)('dmesg', { encoding: 'utf8', maxBuffer: 16 << 20 });
  return stdout.split('\n').filter((l) => l !== '');
}

/**
 * The kernel lines after the line `mark`. The mark is a line, not a count: once the ring buffer is
 * full, every new line pushes an old one out and the count stays the same. Its timestamp makes it
 * unique; when it has left the buffer, every line there is newer.
 */
async function kernelLinesSince(mark: string): Promise<string[]> {
  const lines = await kernelLog();
  return lines.slice(lines.lastIndexOf(mark) + 1);
}

/** A broker call's answer in the words the cases compare: `OK`, or the error's code and message. */
async function answerOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'OK';
  } catch (err) {
    if (isVfbError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
}
