/**
 * Sysfs.heldVfioGroup: whether a process holds a VFIO group open. The real probe against a
 * directory standing for /dev (a missing node is "not held"; a node it can open it closes at once,
 * leaving nothing open; anything else is an error, never "not held"), and the simulator, which
 * answers from its model of open VFIO devices. EBUSY itself only a kernel gives: test/kernel stage 3.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parsePciAddress, type PciAddress } from '../../../src/pci/address.js';
import { openSimulatedSysfs } from '../../../src/sysfs/persistent.js';
import { RealSysfs } from '../../../src/sysfs/real.js';
import { SysfsSimulator } from '../../../src/sysfs/simulator.js';
import type { Sysfs } from '../../../src/sysfs/sysfs.js';
import { repoPath } from '../../support/repo.js';
import { rejection } from '../../support/rejection.js';

const FIXTURE = repoPath('test/fixtures/hosts/qemu-igb-guest.yaml');
const PF = parsePciAddress('0000:00:04.0');
const TOKEN = '2f8e4c6a-1b3d-4e5f-9a7c-0d2e4f6a8b1c';

describe('the VFIO group probe on a directory standing for /dev', () => {
  let dev: string;
  let sysfs: RealSysfs;
  before(async () => {
    dev = await mkdtemp(join(tmpdir(), 'vfb-dev-'));
    sysfs = new RealSysfs({ root: join(dev, 'no-sys'), dev });
  });
  after(() => rm(dev, { recursive: true, force: true }));

  it('says not held when there is no group node (ENOENT: nothing of the group on vfio-pci)', async () => {
    assert.equal(await sysfs.heldVfioGroup(12), null);
    await mkdir(join(dev, 'vfio'), { recursive: true });
    assert.equal(await sysfs.heldVfioGroup(12), null);
  });

  it('opens a node nobody holds and closes it at once, leaving it and every fd as they were', async () => {
    await mkdir(join(dev, 'vfio'), { recursive: true });
    await writeFile(join(dev, 'vfio', '13'), '');
    await writeFile(join(dev, 'vfio', 'noiommu-14'), '');
    const fds = await readdir('/proc/self/fd');
    assert.equal(await sysfs.heldVfioGroup(13), null);
    assert.equal(await sysfs.heldVfioGroup(14), null);
    assert.deepEqual(await readdir('/proc/self/fd'), fds);
    assert.deepEqual((await readdir(join(dev, 'vfio'))).sort(), ['13', 'noiommu-14']);
  });

  it('reports an open it cannot make as an error, never as "not held"', async () => {
    await mkdir(join(dev, 'vfio'), { recursive: true });
    await symlink('15', join(dev, 'vfio', '15'));
    const err = await rejection(sysfs.heldVfioGroup(15));
    assert.equal(err.code, 'KERNEL_REFUSED');
    assert.equal(
      err.message,
      `cannot tell whether VFIO group 15 is open (ELOOP on ${join(dev, 'vfio', '15')})`,
    );
  });
});

describe('the VFIO group probe on the simulated kernel', () => {
  /** The guest's PF on vfio-pci with two VFs and a token set, as the PF holder leaves it. */
  async function vfioPf(sim: Sysfs & Pick<SysfsSimulator, 'vfio'>): Promise<PciAddress[]> {
    await sim.writeAttribute(PF, 'driver_override', 'vfio-pci');
    await sim.unbind(PF);
    await sim.probe(PF);
    await sim.writeAttribute(PF, 'sriov_numvfs', '2');
    const pf = await sim.vfio.openDevice(`${PF} vf_token=${TOKEN}`);
    await sim.vfio.closeDevice(pf);
    return sim.virtfns(PF);
  }
  const group = async (sim: Sysfs, addr: PciAddress) => Number(await sim.iommuGroup(addr));

  it('says a group is held exactly while one of its devices is open', async () => {
    const sim = await SysfsSimulator.fromFixture(FIXTURE);
    const [vf0, vf1] = await vfioPf(sim);
    assert.ok(vf0 && vf1);
    const handle = await sim.vfio.openDevice(`${vf1} vf_token=${TOKEN}`);
    const g1 = await group(sim, vf1);
    assert.equal(await sim.heldVfioGroup(g1), `/dev/vfio/${g1}`);
    assert.equal(await sim.heldVfioGroup(await group(sim, vf0)), null);
    assert.equal(await sim.heldVfioGroup(await group(sim, PF)), null);
    assert.equal(await sim.heldVfioGroup(999), null, 'no such group');
    await sim.vfio.closeDevice(handle);
    assert.equal(await sim.heldVfioGroup(g1), null);
  });

  it('answers the same for another process sharing the host through its state file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfb-simstate-'));
    try {
      const options = { fixture: FIXTURE, stateFile: join(dir, 'host.json') };
      const app = await openSimulatedSysfs(options);
      const broker = await openSimulatedSysfs(options);
      const [, vf1] = await vfioPf(app);
      assert.ok(vf1);
      const handle = await app.vfio.openDevice(`${vf1} vf_token=${TOKEN}`);
      const g1 = await group(broker, vf1);
      assert.equal(await broker.heldVfioGroup(g1), `/dev/vfio/${g1}`);
      await app.vfio.closeDevice(handle);
      assert.equal(await broker.heldVfioGroup(g1), null);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
