/**
 * Stage 2, in the guest as root: vfbroker's PF holder against the kernel's own vfio-pci.
 *
 *   node stage2-pfholder.js <PF>     the PF bound to vfio-pci with at least two VFs enabled
 *
 * This process plays the VF user (what QEMU's `vf-token=` and DPDK's `--vfio-vf-token` do: open the VF's
 * group, GET_DEVICE_FD "<vf> vf_token=<uuid>"); the holder is started as a child exactly as the generic
 * plugin starts it. Each case prints what the kernel was expected to answer and what it answered
 * (REFERENCE.md §1).
 */
import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { parsePciAddress, type PciAddress } from '../../src/pci/address.js';
import { VfioGroup } from '../../src/pfholder/group.js';
import { uuidToBytes } from '../../src/uuid.js';
import { closeFd, deviceSetVfToken } from '../../src/pfholder/vfio.js';
import { HolderProcess } from './holder-process.js';
import { CaseReport } from './report.js';
import { configIds, outcome } from './vf-user.js';

const report = new CaseReport('2');
const A = randomUUID();
const B = randomUUID();
const WRONG = randomUUID();

function device(addr: PciAddress, link: string): string {
  return basename(readlinkSync(`/sys/bus/pci/devices/${addr}/${link}`));
}

/** A holder line in a word or two, for comparison: ready, not-ready EINVAL, ok, EACCES, open=… */
function summary(line: unknown): string {
  if (line === null) return 'no line (stdout closed)';
  const m = line as Record<string, unknown>;
  if (m['ready'] === true) return m['pf'] === undefined ? 'ready without pf' : 'ready';
  if (m['ready'] === false) return `not-ready ${String(m['errno'])}`;
  if (m['ok'] === false) return String(m['errno']);
  if (m['ok'] === true && 'open' in m) return `open=${String(m['open'])} tokenSet=${String(m['tokenSet'])}`;
  if (m['ok'] === true) return 'ok';
  return JSON.stringify(line);
}

async function main(pf: PciAddress): Promise<void> {
  const vf = parsePciAddress(device(pf, 'virtfn1'));
  const vfGroup = VfioGroup.open(Number(device(vf, 'iommu_group')));
  const holders: HolderProcess[] = [];
  const start = (addr: string) => {
    const h = HolderProcess.start(addr);
    holders.push(h);
    return h;
  };
  let openVf: number | null = null;
  const openVfWith = (token?: string) => outcome(() => closeFd(vfGroup.openDevice(vf, token)));
  process.stdout.write(`stage 2: PF ${pf}, VF ${vf}\n`);

  try {
    // ---- a holder sets token A; VF users need exactly A
    const h1 = start(pf);
    report.check('holder-ready', 'ready', summary(await h1.next()));
    report.check('vf-open-before-any-token', 'EACCES', openVfWith(A));
    report.check('holder-set-token-A', 'ok', summary(await h1.request({ op: 'set-token', token: A })));
    report.check('holder-status', 'open=true tokenSet=true', summary(await h1.request({ op: 'status' })));
    report.check('vf-open-no-token', 'EACCES', openVfWith());
    report.check('vf-open-wrong-token', 'EACCES', openVfWith(WRONG));
    report.check('vf-open-malformed-token', 'EINVAL', openVfWith('not-a-uuid'));
    let vfFd = -1;
    report.check(
      'vf-open-token-A',
      'OK',
      outcome(() => (vfFd = vfGroup.openDevice(vf, A))),
    );
    if (vfFd < 0) throw new Error('no open VF to continue with');
    openVf = vfFd;
    report.check('vf-config-read', '8086:10ca', configIds(vfFd, vf));
    report.check(
      'vf-set-token-refused',
      'ENOTTY',
      outcome(() => deviceSetVfToken(vfFd, vf, uuidToBytes(B))),
    );

    // ---- live rotation to B while the VF is open
    report.check(
      'holder-rotate-to-B-vf-open',
      'ok',
      summary(await h1.request({ op: 'set-token', token: B })),
    );
    report.check('open-vf-usable-after-rotation', '8086:10ca', configIds(vfFd, vf));
    report.check('vf-open-token-A-after-rotation', 'EACCES', openVfWith(A));
    report.check('vf-open-token-B-after-rotation', 'OK', openVfWith(B));
    report.check('holder-bad-request', 'EINVAL', summary(await h1.request({ op: 'set-token', token: 'x' })));
    report.check('holder-exit-on-sigterm', '0', String(await h1.terminate()));
    report.check('vf-open-token-B-after-holder-exit', 'OK', openVfWith(B));

    // ---- the PF reopened while a VF is open: only with the current token
    const pfGroup = VfioGroup.open(Number(device(pf, 'iommu_group')));
    report.check(
      'pf-open-no-token-vf-open',
      'EACCES',
      outcome(() => closeFd(pfGroup.openDevice(pf))),
    );
    pfGroup.close();
    const h2 = start(pf);
    report.check('holder-restart-ready', 'ready', summary(await h2.next()));
    report.check(
      'holder-restart-old-token-vf-open',
      'EACCES',
      summary(await h2.request({ op: 'set-token', token: A })),
    );
    report.check(
      'holder-status-after-refusal',
      'open=false tokenSet=false',
      summary(await h2.request({ op: 'status' })),
    );
    report.check(
      'holder-restart-current-token-vf-open',
      'ok',
      summary(await h2.request({ op: 'set-token', token: B })),
    );
    report.check('open-vf-usable-after-holder-restart', '8086:10ca', configIds(vfFd, vf));
    report.check('vf-open-token-B-after-holder-restart', 'OK', openVfWith(B));
    report.check('holder-exit-on-stdin-close', '0', String(await h2.closeStdin()));

    // ---- the holder refuses what it cannot hold, before any request (started together: each is a
    // whole node start-up, seconds under TCG)
    const refusals = [
      ['holder-not-ready-for-a-vf', vf, 'not-ready EINVAL exit=1'],
      ['holder-not-ready-for-a-non-sriov-device', '0000:00:00.0', 'not-ready EINVAL exit=1'],
      ['holder-not-ready-for-a-missing-device', '0000:ff:1f.7', 'not-ready ENODEV exit=1'],
      ['holder-not-ready-for-a-malformed-address', '00:04.0', 'not-ready EINVAL exit=1'],
    ] as const;
    const answers = await Promise.all(
      refusals.map(async ([, addr]) => {
        const h = start(addr);
        const ready = summary(await h.next());
        return `${ready} exit=${String(await h.exited())}`;
      }),
    );
    refusals.forEach(([name, , expected], i) => report.check(name, expected, answers[i] ?? 'no answer'));
  } finally {
    for (const h of holders) if (h.running) await h.terminate();
    if (openVf !== null) closeFd(openVf);
    vfGroup.close();
  }

  // The holder's log and replies are the places a token could leak from; neither may carry one.
  report.checkNoTokens('no-token-in-holder-output', holders.map((h) => h.stdout + h.stderr).join('\n'), [
    A,
    B,
    WRONG,
  ]);
}

await report.run(() => main(parsePciAddress(process.argv[2] ?? '')));
