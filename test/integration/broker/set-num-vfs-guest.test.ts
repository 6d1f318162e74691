/**
 * SetNumVfs for a guest that owns a PF (issue 11 §3): the caller is recognised as the guest's QEMU
 * when a status file in libvirt's run directory, root's, names its pid; an owner rule for that
 * guest then lets it change the PF's VF count. Everything else is refused with a DENIED that says
 * why, and an audit line — never a crash. The last part runs the caller as another user over a real
 * dbus-daemon, so the pid is the one the bus vouches for.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { Caller } from '../../../src/broker/api.js';
import { VfbError } from '../../../src/errors.js';
import { BrokerWorld, pfAddress, type OnBus } from '../../support/broker-world.js';
import { startDbusDaemon, type TestBus } from '../../support/dbus-daemon.js';
import { captureLogs } from '../../support/log-capture.js';
import { makeRunDirectory, statusXml, writeStatusFile } from '../../support/libvirt-run.js';

// Real processes that started before their status files are written, as QEMUs do: the broker checks.
const OWNER = { name: 'pf-owner', uuid: '7c2e9a41-5b3d-4f6e-8a1c-0d9e8f7a6b5c', pid: process.pid };
const NOT_OWNER = { name: 'vm-b', uuid: '0b5e3c1d-7a2f-4e8b-9c6d-5f4a3b2c1d0e', pid: process.ppid };
/** QEMU runs as libvirt-qemu (64055 on Debian), a user no rule names. */
const QEMU_UID = 64055;
const APP_OWNER_UID = 4242;
const isRoot = process.geteuid?.() === 0;
const CLIENT = fileURLToPath(new URL('./fixtures/set-num-vfs-client.js', import.meta.url));

const qemu = (pid: number): Caller => ({
  uid: QEMU_UID,
  pid,
  gids: [QEMU_UID],
  unit: null,
  busName: `:1.${pid}`,
});

function denied(message: string | RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof VfbError, String(err));
    assert.equal(err.code, 'DENIED');
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  };
}

describe('SetNumVfs by the QEMU of a guest that owns the PF', () => {
  const logs = captureLogs('info');
  let dir: string;
  let run: string;
  let world: BrokerWorld;
  const pf0 = pfAddress(0);
  const pf1 = pfAddress(1);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfb-guest-owner-'));
    run = await makeRunDirectory(join(dir, 'libvirt', 'qemu'));
    world = await BrokerWorld.start({
      pfCount: 2,
      vfs: 4,
      guests: [],
      // PF 0: the guest pf-owner; PF 1: an application only, so no guest is looked up for it.
      owners: [
        { guest: OWNER.uuid, pf: 0 },
        { uid: APP_OWNER_UID, pf: 1 },
      ],
      libvirtRunDirectory: run,
      logger: logs.logger,
    });
  });
  after(async () => {
    await world.dispose();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await writeStatusFile(run, OWNER);
    await writeStatusFile(run, NOT_OWNER);
  });
  afterEach(() => {
    logs.lines.length = 0;
  });

  const audit = () =>
    logs.records().filter((r) => r['audit'] === true && r['event'] === 'set-num-vfs' && 'allowed' in r);
  const skippedFiles = () => logs.records().filter((r) => r['msg'] === 'libvirt status file skipped');

  it('serves the guest’s QEMU, and the audit line names the guest', async () => {
    await world.broker.setNumVfs(qemu(OWNER.pid), pf0, 2);
    assert.equal((await world.sim.virtfns(pf0)).length, 2);
    const [line] = audit();
    assert.equal(line?.['guest'], OWNER.uuid);
    assert.equal(line?.['guestName'], OWNER.name);
    assert.equal(line?.['pid'], OWNER.pid);
    assert.equal(line?.['allowed'], true);
    assert.match(String(line?.['reason']), /^allowed by owners\[0\] in .*policy\.yaml:\d+$/);
    const done = logs.records().find((r) => r['msg'] === 'VF count changed');
    assert.equal(done?.['guest'], OWNER.uuid);
    await world.broker.setNumVfs(qemu(OWNER.pid), pf0, 4);
  });

  it('refuses a recognised guest no owner rule names, naming it', async () => {
    await assert.rejects(
      world.broker.setNumVfs(qemu(NOT_OWNER.pid), pf0, 2),
      denied(
        `guest vm-b (${NOT_OWNER.uuid}, QEMU pid ${NOT_OWNER.pid}) may not set the VF count of ${pf0}: no owner rule lets guest ${NOT_OWNER.uuid} set the VF count of PF ${pf0} (default deny)`,
      ),
    );
    const [line] = audit();
    assert.equal(line?.['guest'], NOT_OWNER.uuid);
    assert.equal(line?.['allowed'], false);
    assert.equal((await world.sim.virtfns(pf0)).length, 4, 'nothing changed');
  });

  it('refuses the owner guest on a PF whose rules name no guest, without reading libvirt’s files', async () => {
    await chmod(join(run, 'pf-owner.xml'), 0o666);
    await assert.rejects(
      world.broker.setNumVfs(qemu(OWNER.pid), pf1, 2),
      denied(
        `uid ${QEMU_UID} may not set the VF count of ${pf1}: no owner rule lets uid ${QEMU_UID} (outside any systemd unit) set the VF count of PF ${pf1} (default deny)`,
      ),
    );
    const [line] = audit();
    assert.ok(line && !('guest' in line) && !('notGuest' in line), 'no guest lookup');
    assert.deepEqual(skippedFiles(), [], 'the untrustworthy file was not even opened');
    assert.equal((await world.sim.virtfns(pf1)).length, 4);
  });

  it('refuses a pid that is no guest’s QEMU, saying so', async () => {
    const reason = `pid 5003 is not the QEMU of a running libvirt guest: no status file in ${run} names it`;
    await assert.rejects(
      world.broker.setNumVfs(qemu(5003), pf0, 2),
      denied(
        `uid ${QEMU_UID} may not set the VF count of ${pf0}: no owner rule lets uid ${QEMU_UID} (outside any systemd unit) set the VF count of PF ${pf0} (default deny); ${reason}`,
      ),
    );
    assert.equal(audit()[0]?.['notGuest'], reason);
  });

  it('refuses when the status file naming the pid could have been forged', async () => {
    const untrusted = new RegExp(
      `; pid ${OWNER.pid} is not the QEMU of a running libvirt guest: no status file in .* names it; 1 untrustworthy or malformed, skipped \\(see the broker log\\)$`,
    );
    await chmod(join(run, 'pf-owner.xml'), 0o606);
    await assert.rejects(world.broker.setNumVfs(qemu(OWNER.pid), pf0, 2), denied(untrusted));
    if (isRoot) {
      await chmod(join(run, 'pf-owner.xml'), 0o600);
      await chown(join(run, 'pf-owner.xml'), QEMU_UID, QEMU_UID);
      await assert.rejects(world.broker.setNumVfs(qemu(OWNER.pid), pf0, 2), denied(untrusted));
    }
    assert.deepEqual(
      skippedFiles().map((r) => r['problem']),
      [
        'is writable by group or others (mode 0606)',
        ...(isRoot ? [`is owned by uid ${QEMU_UID}, not by root`] : []),
      ],
    );
    assert.equal((await world.sim.virtfns(pf0)).length, 4);
  });

  it('refuses when the status file is malformed or huge', async () => {
    const file = join(run, 'pf-owner.xml');
    const text = statusXml(OWNER);
    for (const bad of [text.replace('</domstatus>', ''), text + ' '.repeat(4 * 1024 * 1024)]) {
      await writeFile(file, bad, { mode: 0o600 });
      await assert.rejects(
        world.broker.setNumVfs(qemu(OWNER.pid), pf0, 2),
        denied(/; 1 untrustworthy or malformed, skipped \(see the broker log\)$/),
      );
    }
    const problems = skippedFiles().map((r) => String(r['problem']));
    assert.equal(problems.length, 2);
    assert.match(problems[0] ?? '', /^the status file is not well-formed XML/);
    assert.match(problems[1] ?? '', /^is larger than 4194304 bytes/);
    assert.equal((await world.sim.virtfns(pf0)).length, 4);
  });

  describe('over the bus, the caller another user', { skip: isRoot ? false : 'needs root (setpriv)' }, () => {
    let bus: TestBus;
    let onBus: OnBus;
    before(async () => {
      bus = await startDbusDaemon();
      onBus = await world.exportOn(bus.address);
    });
    after(async () => {
      await onBus.close();
      await bus.stop();
    });

    /**
     * Starts the client as uid 64055; once it is on the bus, `prepare(pid)` sets up libvirt's files
     * for its pid, then it calls SetNumVfs(pf0, count) and reports the outcome.
     */
    async function callAsQemu(count: number, prepare: (pid: number) => Promise<void>) {
      const child = spawn(
        'setpriv',
        [
          `--reuid=${QEMU_UID}`,
          `--regid=${QEMU_UID}`,
          '--clear-groups',
          process.execPath,
          CLIENT,
          bus.address,
          pf0,
          String(count),
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const ready = JSON.parse(String((await lines.next()).value)) as { pid: number };
      await prepare(ready.pid);
      child.stdin.end('go\n');
      const outcome = JSON.parse(String((await lines.next()).value)) as {
        ok: boolean;
        code?: string;
        message?: string;
      };
      return { pid: ready.pid, outcome };
    }

    it('serves the QEMU a root-owned status file names, with the pid the bus vouches for', async () => {
      const { pid, outcome } = await callAsQemu(3, (p) =>
        writeStatusFile(run, { ...OWNER, pid: p }).then(() => {}),
      );
      assert.deepEqual(outcome, { ok: true });
      assert.equal((await world.sim.virtfns(pf0)).length, 3);
      const [line] = audit();
      assert.equal(line?.['guest'], OWNER.uuid);
      assert.equal(line?.['pid'], pid);
      assert.equal(line?.['uid'], QEMU_UID);
    });

    it('refuses the same process when no status file names it', async () => {
      const { pid, outcome } = await callAsQemu(2, () => Promise.resolve());
      assert.equal(outcome.ok, false);
      assert.equal(outcome.code, 'DENIED');
      assert.match(
        outcome.message ?? '',
        new RegExp(`; pid ${pid} is not the QEMU of a running libvirt guest: no status file in .* names it$`),
      );
      assert.equal((await world.sim.virtfns(pf0)).length, 3);
    });
  });
});
