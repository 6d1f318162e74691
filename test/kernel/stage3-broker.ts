/**
 * Stage 3, in the guest as root: vfbroker's own flow on the real kernel. A private dbus-daemon with
 * the shipped bus policy, `vfbroker serve` with the file store and /sys, the emulated 82576 brought
 * up with `plugin: generic` (from igb to vfio-pci, held by vfbroker's PF holder), and consumers that
 * ask the broker for VF 1's token with the CLI under their own uid, then open the VF through VFIO
 * with it as QEMU and DPDK do (GET_DEVICE_FD "<vf> vf_token=<uuid>"). Last, the PF's VF count
 * changes through SetNumVfs (stage3-set-num-vfs.ts).
 *
 *   node stage3-broker.js <PF>     the PF in any state stage 2 may leave it in; igb loaded
 *
 * The guest's /etc/passwd has the consumer (uid 1001, granted VF 1 in policy.yaml by uid and named
 * the PF's owner) and a stranger (uid 1002, granted nothing).
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startPrivateBus } from '../../src/demo/private-bus.js';
import { parsePciAddress, type PciAddress } from '../../src/pci/address.js';
import { VfioGroup } from '../../src/pfholder/group.js';
import { closeFd } from '../../src/pfholder/vfio.js';
import { RealSysfs } from '../../src/sysfs/real.js';
import { isUuid } from '../../src/uuid.js';
import { restorePf } from '../cases/sysfs-cases.js';
import { BrokerProcess, runCli, type CliResult, type Identity } from './broker-process.js';
import { brokerConfig, checkReady, holderState } from './broker-stage.js';
import { CaseReport } from './report.js';
import { setNumVfsCases } from './stage3-set-num-vfs.js';
import { configIds, outcome } from './vf-user.js';

const report = new CaseReport('3');
const ROOT: Identity = { uid: 0, gid: 0 };
const CONSUMER: Identity = { uid: 1001, gid: 1001 };
const STRANGER: Identity = { uid: 1002, gid: 1002 };
const CALL_TIMEOUT_MS = 240_000;
/** sysexits EX_NOPERM: the CLI's exit status for DENIED (src/errors.ts). */
const EXIT_DENIED = 77;
/** Granted VF 1 in policy.yaml: a lease on it holds the PF's VF count. */
const GUEST = { uuid: randomUUID(), name: 'vm-stage3' };

/**
 * A token-get answer in words: `exit 0, a token`; `exit 77, no token, denied` when the broker's
 * refusal names the caller and the VF; otherwise what the CLI said.
 */
function tokenAnswer(r: CliResult, denial?: { who: Identity; vf: PciAddress }): string {
  const out = r.stdout.trim();
  const got = out === '' ? 'no token' : isUuid(out) ? 'a token' : `stdout ${JSON.stringify(out)}`;
  const said = r.stderr.trim().split('\n')[0] ?? '';
  const denied =
    denial !== undefined && said.includes(`uid ${denial.who.uid} may not read the token of ${denial.vf}:`);
  return `exit ${String(r.code)}, ${got}${denied ? ', denied' : r.code === 0 ? '' : `: ${said}`}`;
}

function policy(pf: PciAddress): string {
  return `rules:
  - app: { user: ${CONSUMER.uid} }
    name: stage 3 consumer
    vfs:
      - { pf: '${pf}', vfs: [1] }
  - guest: '${GUEST.uuid}'
    name: ${GUEST.name}
    vfs:
      - { pf: '${pf}', vfs: [1] }
owners:
  - app: { user: ${CONSUMER.uid} }
    name: stage 3 PF owner
    pf: '${pf}'
`;
}

async function main(pf: PciAddress): Promise<void> {
  const sysfs = new RealSysfs();
  await restorePf({ sysfs, pf, pfKernelDriver: 'igb', stubDriver: 'pci-pf-stub' });
  report.check(
    'pf-starts-on-igb-without-vfs',
    'igb 0',
    `${await sysfs.driver(pf)} ${await sysfs.readAttribute(pf, 'sriov_numvfs')}`,
  );

  const dir = await mkdtemp('/tmp/vfb-stage3-');
  // The consumers reach the bus socket inside it.
  await chmod(dir, 0o755);
  const bus = await startPrivateBus({ directory: join(dir, 'bus'), policy: 'shipped' });
  const configPath = join(dir, 'broker.yaml');
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(configPath, brokerConfig(dir, bus.address, pf));
  await writeFile(policyPath, policy(pf));
  // The CLI's default 10 s per call is for a real host; under TCG a PfUp alone can take longer.
  const cli = (who: Identity, ...args: string[]) =>
    runCli(['--bus', bus.address, '--timeout', String(CALL_TIMEOUT_MS), ...args], who);
  // What the CLI and the SetNumVfs calls wrote: no token may be in it.
  const outputs: string[] = [];
  const pfUp = async () => {
    const r = await cli(ROOT, 'pf', 'up', pf);
    outputs.push(r.stderr);
    return r;
  };
  const tokenGet = async (who: Identity, vf: PciAddress) => {
    const r = await cli(who, 'token', 'get', '--vf', vf);
    outputs.push(r.stderr);
    return r;
  };

  const brokers: BrokerProcess[] = [];
  const startBroker = () => {
    const b = BrokerProcess.start(configPath, policyPath);
    brokers.push(b);
    return b;
  };
  let vfGroup: VfioGroup | null = null;
  let vfFd: number | null = null;
  // The group first: a device fd keeps its group's file, so the IOMMU container goes with the device.
  const closeHeldVf = () => {
    vfGroup?.close();
    vfGroup = null;
    if (vfFd !== null) closeFd(vfFd);
    vfFd = null;
  };
  const tokens: string[] = [];
  try {
    // ---- the broker brings the PF up: igb → vfio-pci, the holder sets the token, then 2 VFs
    let broker = startBroker();
    await checkReady(report, 'broker-ready-pf-up', broker, pf, pfUp);
    const vfs = await sysfs.virtfns(pf);
    const vfDrivers = await Promise.all(vfs.map((vf) => sysfs.driver(vf)));
    report.check(
      'pf-and-vfs-on-vfio-pci',
      'PF vfio-pci, VFs vfio-pci,vfio-pci',
      `PF ${await sysfs.driver(pf)}, VFs ${vfDrivers.join(',')}`,
    );
    const before = await holderState(bus.address, pf);
    report.check('holder-holds-the-pf', 'up, PF open, token set', before.words);
    const [vf0, vf1] = vfs;
    if (vf0 === undefined || vf1 === undefined) throw new Error(`expected 2 VFs, found ${vfs.length}`);

    // ---- who gets VF 1's token: the consumer the policy names, nobody else, and only VF 1
    const [mine, stranger, otherVf] = await Promise.all([
      tokenGet(CONSUMER, vf1),
      tokenGet(STRANGER, vf1),
      tokenGet(CONSUMER, vf0),
    ]);
    report.check('authorised-consumer-gets-the-token', 'exit 0, a token', tokenAnswer(mine));
    report.check(
      'unauthorised-consumer-is-denied',
      `exit ${EXIT_DENIED}, no token, denied`,
      tokenAnswer(stranger, { who: STRANGER, vf: vf1 }),
    );
    report.check(
      'consumer-is-denied-a-vf-not-granted',
      `exit ${EXIT_DENIED}, no token, denied`,
      tokenAnswer(otherVf, { who: CONSUMER, vf: vf0 }),
    );
    const first = mine.stdout.trim();
    tokens.push(first);

    // ---- the kernel enforces it: the VF opens with that token only
    const group = VfioGroup.open(Number(await sysfs.iommuGroup(vf1)));
    vfGroup = group;
    const openWith = (token?: string) => outcome(() => closeFd(group.openDevice(vf1, token)));
    report.check('vf-open-without-token', 'EACCES', openWith());
    report.check('vf-open-wrong-token', 'EACCES', openWith(randomUUID()));
    report.check(
      'vf-open-with-the-brokers-token',
      'OK',
      outcome(() => (vfFd = group.openDevice(vf1, first))),
    );
    const held = vfFd;
    if (held === null) throw new Error('no open VF to continue with');
    report.check('vf-config-read', '8086:10ca', configIds(held, vf1));

    // ---- live rotation through the broker while the VF is open
    const rotated = await cli(ROOT, 'token', 'rotate', pf);
    outputs.push(rotated.stderr);
    report.check(
      'token-rotate-through-the-broker',
      `exit 0, ${pf}: done`,
      `exit ${String(rotated.code)}, ${(rotated.stdout.trim() || rotated.stderr.trim()).split('\n')[0] ?? ''}`,
    );
    const again = await tokenGet(CONSUMER, vf1);
    const second = again.stdout.trim();
    tokens.push(second);
    report.check(
      'consumer-gets-the-new-token',
      'exit 0, a token, new',
      `${tokenAnswer(again)}, ${second === first ? 'unchanged' : 'new'}`,
    );
    report.check('open-vf-usable-after-rotation', '8086:10ca', configIds(held, vf1));
    report.check('vf-open-old-token-after-rotation', 'EACCES', openWith(first));
    report.check('vf-open-new-token-after-rotation', 'OK', openWith(second));

    // ---- restart the broker while the VF is open: a new holder must reopen the PF with the
    // current token (the kernel refuses any other while a VF is open)
    report.check('broker-stops-on-sigterm', '0', String(await broker.stop()));
    report.check('open-vf-usable-while-the-broker-is-down', '8086:10ca', configIds(held, vf1));
    broker = startBroker();
    await checkReady(report, 'broker-restart-ready-pf-up', broker, pf, pfUp);
    const after = await holderState(bus.address, pf);
    report.check(
      'restarted-holder-reopened-the-pf',
      'up, PF open, token set, new holder',
      `${after.words}, ${after.pid !== null && after.pid !== before.pid ? 'new holder' : 'same holder'}`,
    );
    report.check('open-vf-usable-after-broker-restart', '8086:10ca', configIds(held, vf1));
    report.check('vf-open-current-token-after-restart', 'OK', openWith(second));
    report.check('vf-open-old-token-after-restart', 'EACCES', openWith(first));
    const third = await tokenGet(CONSUMER, vf1);
    report.check(
      'token-unchanged-by-restart',
      'exit 0, a token, unchanged',
      `${tokenAnswer(third)}, ${third.stdout.trim() === second ? 'unchanged' : 'changed'}`,
    );

    // ---- SetNumVfs on the real PF, VF 1 still open here
    await setNumVfsCases({
      report,
      sysfs,
      pf,
      busAddress: bus.address,
      broker,
      callTimeoutMs: CALL_TIMEOUT_MS,
      owner: CONSUMER,
      stranger: STRANGER,
      guest: GUEST,
      token: second,
      holderPid: after.pid,
      heldVf: vf1,
      heldFd: held,
      closeHeldVf,
      outputs,
      tokens,
    });
    report.check('broker-stops-again', '0', String(await broker.stop()));
  } finally {
    closeHeldVf();
    for (const b of brokers) if (b.running) await b.stop();
    await bus.stop();
  }

  // The broker's log (its PF holders' lines included) and the CLI's errors may never carry a token.
  report.checkNoTokens(
    'no-token-in-broker-output',
    [...brokers.map((b) => b.output), ...outputs].join('\n'),
    tokens,
  );
}

await report.run(() => main(parsePciAddress(process.argv[2] ?? '')));
