import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parsePciAddress } from '../../../src/pci/address.js';
import { openSysfs } from '../../../src/sysfs/open.js';
import { openSimulatedSysfs } from '../../../src/sysfs/persistent.js';
import { RealSysfs } from '../../../src/sysfs/real.js';
import { repoPath } from '../../support/repo.js';

const FIXTURE = repoPath('test/fixtures/hosts/qemu-igb-guest.yaml');
const PF = parsePciAddress('0000:00:04.0');
const TOKEN = '5d2c8e1a-3f6b-4c9d-8a7e-2b1f0c4d6e8a';

describe('a simulated host shared through a state file', () => {
  let dir: string;
  let n = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfb-simstate-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  const stateFile = () => join(dir, `host-${n++}.json`);

  it('creates the state from the fixture, owner-only, with no temporary file left', async () => {
    const file = stateFile();
    const host = await openSimulatedSysfs({ fixture: FIXTURE, stateFile: file });
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.endsWith('.tmp')),
      [],
    );
    assert.equal(await host.driver(PF), 'igb');
    assert.equal(host.description, `simulator:${FIXTURE} (state ${file})`);
  });

  it("lets each process see the others' changes", async () => {
    const options = { fixture: FIXTURE, stateFile: stateFile() };
    const broker = await openSimulatedSysfs(options);
    const cli = await openSimulatedSysfs(options);
    await broker.writeAttribute(PF, 'sriov_numvfs', '2');
    assert.deepEqual(await cli.virtfns(PF), ['0000:00:14.0', '0000:00:14.2']);
    await cli.writeAttribute(PF, 'sriov_numvfs', '0');
    assert.deepEqual(await broker.virtfns(PF), []);
  });

  it('keeps what a refused write logged, as the kernel does', async () => {
    const options = { fixture: FIXTURE, stateFile: stateFile() };
    const a = await openSimulatedSysfs(options);
    const b = await openSimulatedSysfs(options);
    await a.writeAttribute(PF, 'sriov_numvfs', '1');
    await assert.rejects(a.writeAttribute(PF, 'sriov_numvfs', '2'), { errno: 'EBUSY' });
    assert.equal(
      (await b.readKernelLog()).at(-1),
      'igb 0000:00:04.0: 1 VFs already enabled. Disable before enabling 2 VFs',
    );
  });

  it('shares VF tokens and open VFIO devices, storing only a hash of the token', async () => {
    const options = { fixture: FIXTURE, stateFile: stateFile() };
    const holder = await openSimulatedSysfs(options);
    const qemu = await openSimulatedSysfs(options);
    await holder.writeAttribute(PF, 'driver_override', 'vfio-pci');
    await holder.unbind(PF);
    await holder.probe(PF);
    await holder.writeAttribute(PF, 'sriov_numvfs', '1');
    await holder.vfio.openDevice(`${PF} vf_token=${TOKEN}`);
    await assert.rejects(qemu.vfio.openDevice('0000:00:14.0'), {
      details: { errno: 'EACCES', path: '/dev/vfio/1' },
    });
    assert.equal(typeof (await qemu.vfio.openDevice(`0000:00:14.0 vf_token=${TOKEN}`)), 'number');
    assert.equal((await readFile(options.stateFile, 'utf8')).includes(TOKEN), false);
  });

  it('runs the calls of one process one after the other, in call order', async () => {
    const file = stateFile();
    const host = await openSimulatedSysfs({ fixture: FIXTURE, stateFile: file });
    await Promise.all(['1', '0', '3'].map((n) => host.writeAttribute(PF, 'sriov_numvfs', n)));
    const other = await openSimulatedSysfs({ fixture: FIXTURE, stateFile: file });
    assert.equal(await other.readAttribute(PF, 'sriov_numvfs'), '3');
  });

  it('resets every process to the fixture', async () => {
    const options = { fixture: FIXTURE, stateFile: stateFile() };
    const a = await openSimulatedSysfs(options);
    const b = await openSimulatedSysfs(options);
    await a.writeAttribute(PF, 'sriov_numvfs', '2');
    await b.reset();
    assert.equal(await a.readAttribute(PF, 'sriov_numvfs'), '0');
    assert.deepEqual(await a.readKernelLog(), []);
  });

  it('refuses a state file that is not one, saying how to start over', async () => {
    const file = stateFile();
    await writeFile(file, '{"version":1,"devices":[]}');
    await assert.rejects(openSimulatedSysfs({ fixture: FIXTURE, stateFile: file }), {
      code: 'STORE_CORRUPT',
      message: `${file} is not a simulated host state`,
      hint: 'delete it: the next call recreates it from the fixture',
    });
    await writeFile(file, '{');
    await assert.rejects(openSimulatedSysfs({ fixture: FIXTURE, stateFile: file }), {
      code: 'STORE_CORRUPT',
    });
  });

  it('fails at once on a broken fixture', async () => {
    const fixture = join(dir, 'broken.yaml');
    await writeFile(fixture, 'drivers: []\n');
    await assert.rejects(openSimulatedSysfs({ fixture, stateFile: stateFile() }), {
      code: 'CONFIG_INVALID',
      message: `${fixture}:1:1: devices: missing (expected a list)`,
    });
  });
});

describe('openSysfs', () => {
  it('opens the sysfs broker.yaml asks for', async () => {
    const real = await openSysfs({ type: 'root', root: '/sys' });
    assert.ok(real instanceof RealSysfs);
    const dir = await mkdtemp(join(tmpdir(), 'vfb-opensysfs-'));
    try {
      const sim = await openSysfs({ type: 'simulator', fixture: FIXTURE, stateFile: join(dir, 'host.json') });
      assert.equal(await sim.driver(PF), 'igb');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
