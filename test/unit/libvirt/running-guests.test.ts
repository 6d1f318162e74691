import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  MAX_STATUS_FILE_BYTES,
  RunningGuests,
  type QemuLookup,
} from '../../../src/libvirt/running-guests.js';
import { captureLogs, type CapturedLogs } from '../../support/log-capture.js';
import { makeRunDirectory, statusXml, writeStatusFile } from '../../support/libvirt-run.js';

const OWNER = { name: 'pf-owner', uuid: '7c2e9a41-5b3d-4f6e-8a1c-0d9e8f7a6b5c', pid: 5001 };
const OTHER = { name: 'vm-b', uuid: '0b5e3c1d-7a2f-4e8b-9c6d-5f4a3b2c1d0e', pid: 5002 };
const TOKEN = '4c1d7e2a-9b3f-4a6e-8d5c-0f1e2d3c4b5a';
const isRoot = process.geteuid?.() === 0;
/** The fake /proc's boot time: a minute ago. */
const BOOT_S = Math.floor(Date.now() / 1000) - 60;

/** /proc as far as start times go: btime, and `pid` started `afterBootS` seconds after boot. */
async function fakeProc(root: string, processes: ReadonlyArray<readonly [pid: number, afterBootS: number]>) {
  await mkdir(root, { recursive: true });
  await writeFile(join(root, 'stat'), `cpu  1 2 3 4\nbtime ${BOOT_S}\nprocesses 9\n`);
  for (const [pid, afterBootS] of processes) {
    await mkdir(join(root, String(pid)), { recursive: true });
    // Field 22 (starttime, in ticks of 1/100 s) after a command name with a space and a parenthesis.
    const fields = ['S', ...Array<string>(18).fill('0'), String(afterBootS * 100), '0'];
    await writeFile(join(root, String(pid), 'stat'), `${pid} (qemu (x) 8) ${fields.join(' ')}\n`);
  }
}

describe('which running guest a pid is the QEMU of', () => {
  let dir: string;
  let run: string;
  let logs: CapturedLogs;
  let guests: RunningGuests;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfb-libvirt-run-'));
    run = await makeRunDirectory(join(dir, 'qemu'));
    logs = captureLogs();
    // Both QEMUs started ten seconds after boot, well before their status files are written.
    await fakeProc(join(dir, 'proc'), [
      [OWNER.pid, 10],
      [OTHER.pid, 10],
      [5003, 10],
    ]);
    guests = new RunningGuests({ directory: run, logger: logs.logger, procRoot: join(dir, 'proc') });
    await writeStatusFile(run, OWNER);
    await writeStatusFile(run, OTHER);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const notFound = (lookup: QemuLookup): string => {
    assert.equal(lookup.found, false, JSON.stringify(lookup));
    return lookup.found ? '' : lookup.reason;
  };
  const skipped = () =>
    logs
      .records()
      .filter((r) => r['msg'] === 'libvirt status file skipped')
      .map((r) => ({ file: r['file'], problem: r['problem'], level: r['level'] }));

  it('finds the guest whose status file names the pid', async () => {
    assert.deepEqual(await guests.byQemuPid(OWNER.pid), {
      found: true,
      guest: { ...OWNER, file: join(run, 'pf-owner.xml') },
    });
    assert.deepEqual(await guests.byQemuPid(OTHER.pid), {
      found: true,
      guest: { ...OTHER, file: join(run, 'vm-b.xml') },
    });
  });

  it('finds no one when the pid a file names is gone, or now belongs to a later process', async () => {
    await rm(join(dir, 'proc', String(OWNER.pid)), { recursive: true });
    assert.equal(
      notFound(await guests.byQemuPid(OWNER.pid)),
      'pid 5001 is not the QEMU of a running libvirt guest: it has exited',
    );
    // QEMU died while libvirt was down; its file stayed, and the kernel gave its pid to a process
    // that started a minute after the file was last written.
    const file = join(run, 'vm-b.xml');
    const written = new Date((BOOT_S - 120) * 1000);
    await utimes(file, written, written);
    assert.equal(
      notFound(await guests.byQemuPid(OTHER.pid)),
      `pid 5002 is not the QEMU of a running libvirt guest: it started after ${file} was last written, so that stale file names an earlier process`,
    );
    assert.equal(
      logs
        .records()
        .filter((r) => r['msg'] === 'a libvirt status file names a pid that a later process now has').length,
      1,
    );
  });

  it('reads the files afresh each time: a guest that stopped is no longer found', async () => {
    await rm(join(run, 'pf-owner.xml'));
    assert.equal(
      notFound(await guests.byQemuPid(OWNER.pid)),
      `pid 5001 is not the QEMU of a running libvirt guest: no status file in ${run} names it`,
    );
  });

  it('finds no one for a pid no status file names, nor for a shut-off domain', async () => {
    assert.equal(
      notFound(await guests.byQemuPid(501)),
      `pid 501 is not the QEMU of a running libvirt guest: no status file in ${run} names it`,
    );
    await writeStatusFile(run, { ...OWNER, state: 'shutoff' });
    assert.match(notFound(await guests.byQemuPid(OWNER.pid)), /no status file in .* names it$/);
    assert.deepEqual(skipped(), []);
  });

  it('looks only at <name>.xml files', async () => {
    await writeFile(join(run, 'pf-owner.pid'), `${OTHER.pid}`, { mode: 0o600 });
    await writeFile(join(run, 'ghost.xml.new'), statusXml({ ...OWNER, name: 'ghost', pid: 5003 }), {
      mode: 0o600,
    });
    await mkdir(join(run, 'dbus'));
    assert.match(notFound(await guests.byQemuPid(5003)), /no status file in .* names it$/);
    assert.deepEqual(skipped(), []);
  });

  it('says when libvirt runs no guest at all', async () => {
    const none = new RunningGuests({ directory: join(dir, 'absent'), logger: logs.logger });
    assert.equal(
      notFound(await none.byQemuPid(OWNER.pid)),
      `pid 5001 is not the QEMU of a running libvirt guest: ${join(dir, 'absent')} does not exist (no guest is running)`,
    );
  });

  it('skips, with a warning, a file others could have written', async () => {
    for (const mode of [0o620, 0o602, 0o666]) {
      await chmod(join(run, 'pf-owner.xml'), mode);
      assert.equal(
        notFound(await guests.byQemuPid(OWNER.pid)),
        `pid 5001 is not the QEMU of a running libvirt guest: no status file in ${run} names it; 1 untrustworthy or malformed, skipped (see the broker log)`,
      );
    }
    assert.deepEqual(skipped(), [
      { file: join(run, 'pf-owner.xml'), problem: 'is writable by group or others (mode 0620)', level: 40 },
      { file: join(run, 'pf-owner.xml'), problem: 'is writable by group or others (mode 0602)', level: 40 },
      { file: join(run, 'pf-owner.xml'), problem: 'is writable by group or others (mode 0666)', level: 40 },
    ]);
    // A file only readable by others is libvirt's business, not a forgery.
    await chmod(join(run, 'pf-owner.xml'), 0o644);
    assert.equal((await guests.byQemuPid(OWNER.pid)).found, true);
  });

  it('skips a file that is not root’s', { skip: isRoot ? false : 'needs root to chown' }, async () => {
    await chown(join(run, 'pf-owner.xml'), 4242, 4242);
    assert.match(notFound(await guests.byQemuPid(OWNER.pid)), /; 1 untrustworthy or malformed, skipped/);
    assert.deepEqual(skipped(), [
      { file: join(run, 'pf-owner.xml'), problem: 'is owned by uid 4242, not by root', level: 40 },
    ]);
  });

  it('trusts no file in a directory others could write to or that is not root’s', async () => {
    await chmod(run, 0o775);
    assert.equal(
      notFound(await guests.byQemuPid(OWNER.pid)),
      `pid 5001 is not the QEMU of a running libvirt guest: ${run} is writable by group or others (mode 0775)`,
    );
    await chmod(run, 0o755);
    if (isRoot) {
      await chown(run, 4242, 4242);
      assert.equal(
        notFound(await guests.byQemuPid(OWNER.pid)),
        `pid 5001 is not the QEMU of a running libvirt guest: ${run} is owned by uid 4242, not by root`,
      );
    }
    const warnings = logs.records().filter((r) => r['level'] === 40);
    assert.ok(warnings.length >= 1);
    assert.ok(
      warnings.every(
        (r) => r['msg'] === "libvirt's run directory is not trusted; no guest can be recognised",
      ),
    );
  });

  it('neither follows a link nor waits on a FIFO', async () => {
    const elsewhere = join(dir, 'elsewhere');
    await makeRunDirectory(elsewhere);
    await writeStatusFile(elsewhere, { ...OWNER, name: 'linked', pid: 5003 });
    await symlink(join(elsewhere, 'linked.xml'), join(run, 'linked.xml'));
    execFileSync('mkfifo', ['-m', '600', join(run, 'fifo.xml')]);
    assert.match(notFound(await guests.byQemuPid(5003)), /; 2 untrustworthy or malformed, skipped/);
    assert.deepEqual(skipped(), [
      { file: join(run, 'fifo.xml'), problem: 'is not a regular file', level: 40 },
      { file: join(run, 'linked.xml'), problem: 'is a symbolic link', level: 40 },
    ]);
  });

  it('skips a malformed or oversized file naming the pid, and never logs what is inside', async () => {
    const token = `<qemu:override xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:device alias='hostdev0'><qemu:frontend><qemu:property name='vf-token' type='string' value='${TOKEN}'/></qemu:frontend></qemu:device></qemu:override>`;
    const text = statusXml(OWNER).replace('</domain>', `${token}</domain>`);
    await writeFile(join(run, 'pf-owner.xml'), text.slice(0, -200), { mode: 0o600 });
    assert.match(notFound(await guests.byQemuPid(OWNER.pid)), /; 1 untrustworthy or malformed, skipped/);
    await writeFile(join(run, 'pf-owner.xml'), text.replace('<uuid>', '<uuid>x'), { mode: 0o600 });
    assert.match(notFound(await guests.byQemuPid(OWNER.pid)), /; 1 untrustworthy or malformed, skipped/);
    await writeFile(join(run, 'pf-owner.xml'), text + ' '.repeat(MAX_STATUS_FILE_BYTES), { mode: 0o600 });
    assert.match(notFound(await guests.byQemuPid(OWNER.pid)), /; 1 untrustworthy or malformed, skipped/);
    await writeFile(
      join(run, 'pf-owner.xml'),
      Buffer.from([0x3c, 0xff, 0xfe, 0x3e, 0x35, 0x30, 0x30, 0x31]),
      {
        mode: 0o600,
      },
    );
    assert.match(notFound(await guests.byQemuPid(OWNER.pid)), /; 1 untrustworthy or malformed, skipped/);
    const [truncated, ...others] = skipped().map((s) => s.problem);
    assert.match(
      String(truncated),
      /^the status file is not well-formed XML \(\d+:\d+: unclosed tag: qemu:override\)$/,
    );
    assert.deepEqual(others, [
      'the status file has a malformed <uuid> "x7c2e9a41-5b3d-4f6e-8a1c-0d9e8f7a6b5c"',
      `is larger than ${MAX_STATUS_FILE_BYTES} bytes (${Buffer.byteLength(text) + MAX_STATUS_FILE_BYTES})`,
      'the status file is not valid UTF-8',
    ]);
    logs.assertNoSecrets([TOKEN]);
  });

  it('trusts neither of two files that name the same pid for different guests', async () => {
    await writeStatusFile(run, { ...OTHER, pid: OWNER.pid });
    assert.equal(
      notFound(await guests.byQemuPid(OWNER.pid)),
      'pid 5001 is not the QEMU of a running libvirt guest: 2 status files name it, trusting none',
    );
    const [warning] = logs.records().filter((r) => r['level'] === 40);
    assert.equal(warning?.['msg'], 'several libvirt status files name one pid');
  });
});
