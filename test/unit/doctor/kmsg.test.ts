import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { messagesOf, readKernelLog } from '../../../src/doctor/kmsg.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfbroker-kmsg-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Records as /dev/kmsg hands them out: `prio,seq,usec,flags;message`, then ` KEY=value` lines. */
const RECORDS =
  '6,1201,3112233,-;vfio-pci 0000:3b:00.0: Captured SR-IOV VF 0000:3b:10.0 driver_override\n' +
  ' SUBSYSTEM=pci\n' +
  ' DEVICE=+pci:0000:3b:00.0\n' +
  '6,1202,3112240,-;vfio-pci 0000:3b:10.0: VF token required to access device\n' +
  ' SUBSYSTEM=pci\n';

describe('doctor: the kernel log from /dev/kmsg', () => {
  it('keeps each record’s message and drops its metadata', () => {
    assert.deepEqual(messagesOf(RECORDS), [
      'vfio-pci 0000:3b:00.0: Captured SR-IOV VF 0000:3b:10.0 driver_override',
      'vfio-pci 0000:3b:10.0: VF token required to access device',
    ]);
  });

  it('reads a log to its end', async () => {
    const file = join(dir, 'kmsg');
    await writeFile(file, RECORDS);
    assert.deepEqual(await readKernelLog(file), {
      readable: true,
      lines: [
        'vfio-pci 0000:3b:00.0: Captured SR-IOV VF 0000:3b:10.0 driver_override',
        'vfio-pci 0000:3b:10.0: VF token required to access device',
      ],
    });
  });

  it('keeps lines whole across reads of a long log', async () => {
    const file = join(dir, 'long');
    const messages = Array.from({ length: 400 }, (_, i) => `vfio-pci 0000:3b:10.0: record ${i} ‘quoted’`);
    await writeFile(file, messages.map((m, i) => `6,${i},${i * 10},-;${m}\n SUBSYSTEM=pci\n`).join(''));
    assert.deepEqual(await readKernelLog(file), { readable: true, lines: messages });
  });

  it('says why a log cannot be read instead of failing', async () => {
    const missing = join(dir, 'absent');
    assert.deepEqual(await readKernelLog(missing), {
      readable: false,
      reason: `cannot open ${missing}: ENOENT`,
    });
    assert.deepEqual(await readKernelLog(dir), { readable: false, reason: `cannot read ${dir}: EISDIR` });
  });
});
