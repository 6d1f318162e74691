import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KernelError, VfbError } from '../../../src/errors.js';
import { parsePciAddress } from '../../../src/pci/address.js';
import { RealSysfs } from '../../../src/sysfs/real.js';
import { SysfsSimulator } from '../../../src/sysfs/simulator.js';
import type { Sysfs } from '../../../src/sysfs/sysfs.js';
import { repoPath } from '../../support/repo.js';

const PF = parsePciAddress('0000:00:04.0');
const BRIDGE = parsePciAddress('0000:00:00.0');
const GHOST = parsePciAddress('ffff:ff:1f.7');
const vf = (n: number) => parsePciAddress(`0000:00:${(0x14 + (n >> 2)).toString(16)}.${(n % 4) * 2}`);

/** A tree laid out like /sys: the 82576 PF on igb with VFs 0, 1, 2 and 10, and a host bridge. */
async function buildTree(root: string): Promise<void> {
  const file = async (path: string, text: string) => {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text);
  };
  const link = async (path: string, target: string) => {
    await mkdir(join(root, path, '..'), { recursive: true });
    await symlink(target, join(root, path));
  };
  const devices = 'bus/pci/devices';
  for (const d of ['igb', 'igbvf', 'vfio-pci']) {
    await file(`bus/pci/drivers/${d}/bind`, '');
    await file(`bus/pci/drivers/${d}/unbind`, '');
  }
  await file('bus/pci/drivers_probe', '');
  await file(`${devices}/README`, 'not a device\n');
  await file('module/vfio_pci/parameters/enable_sriov', 'Y\n');
  await file(`${devices}/${PF}/vendor`, '0x8086\n');
  await file(`${devices}/${PF}/sriov_numvfs`, '');
  await file(`${devices}/${PF}/sriov_totalvfs`, '8\n');
  await link(`${devices}/${PF}/driver`, '../../drivers/igb');
  await link(`${devices}/${PF}/iommu_group`, '../../../../kernel/iommu_groups/2');
  for (const n of [0, 1, 2, 10]) {
    await link(`${devices}/${PF}/virtfn${n}`, `../${vf(n)}`);
    await link(`${devices}/${vf(n)}/physfn`, `../${PF}`);
  }
  await file(`${devices}/${BRIDGE}/vendor`, '0x8086\n');
  await mkdir(join(root, devices, BRIDGE, 'reset_method'));
}

describe('RealSysfs over a tree laid out like sysfs', () => {
  let root: string;
  let sysfs: RealSysfs;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'vfb-sysfs-'));
    await buildTree(root);
    sysfs = new RealSysfs({ root });
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('is rooted at /sys unless told otherwise', () => {
    assert.equal(new RealSysfs().description, '/sys');
    assert.equal(sysfs.description, root);
  });

  it('lists device addresses in numeric order and nothing else', async () => {
    assert.deepEqual(await sysfs.listDevices(), [BRIDGE, PF, vf(0), vf(1), vf(2), vf(10)]);
    assert.equal(await sysfs.exists(PF), true);
    assert.equal(await sysfs.exists(GHOST), false);
  });

  it('reads an attribute without its trailing newline', async () => {
    assert.equal(await sysfs.readAttribute(PF, 'vendor'), '0x8086');
    assert.equal(await sysfs.readAttribute(PF, 'sriov_totalvfs'), '8');
  });

  it('answers ENOENT for an attribute the device lacks, naming the operation and the path', async () => {
    const err = await rejection(sysfs.readAttribute(vf(0), 'sriov_totalvfs'));
    assert.ok(err instanceof KernelError);
    assert.equal(err.errno, 'ENOENT');
    assert.equal(err.path, join(root, 'bus/pci/devices', vf(0), 'sriov_totalvfs'));
    assert.equal(err.message, `cannot read sriov_totalvfs of ${vf(0)} (ENOENT on ${err.path})`);
  });

  it('writes a value as echo does, in one write, and creates nothing', async () => {
    await sysfs.writeAttribute(PF, 'sriov_numvfs', '4');
    assert.equal(await readFile(join(root, 'bus/pci/devices', PF, 'sriov_numvfs'), 'utf8'), '4\n');
    const err = await rejection(sysfs.writeAttribute(PF, 'driver_override', 'vfio-pci'));
    assert.ok(err instanceof KernelError);
    assert.equal(err.message, `cannot set driver_override of ${PF} to vfio-pci (ENOENT on ${err.path})`);
    assert.equal(await sysfs.exists(PF), true);
    await assert.rejects(readFile(join(root, 'bus/pci/devices', PF, 'driver_override')), { code: 'ENOENT' });
  });

  it('quotes a written value that is not a plain word', async () => {
    const err = await rejection(sysfs.writeAttribute(vf(0), 'driver_override', 'a b\nc'));
    assert.match(err.message, /^cannot set driver_override of 0000:00:14\.0 to "a b\\nc" \(ENOENT on /);
  });

  it('reads the driver, iommu_group and physfn links', async () => {
    assert.equal(await sysfs.driver(PF), 'igb');
    assert.equal(await sysfs.driver(vf(0)), null);
    assert.equal(await sysfs.iommuGroup(PF), 2);
    assert.equal(await sysfs.iommuGroup(BRIDGE), null);
    assert.equal(await sysfs.physfn(vf(1)), PF);
    assert.equal(await sysfs.physfn(PF), null);
  });

  it('orders virtfn links by their number, not by name', async () => {
    assert.deepEqual(await sysfs.virtfns(PF), [vf(0), vf(1), vf(2), vf(10)]);
    assert.deepEqual(await sysfs.virtfns(BRIDGE), []);
  });

  it('answers ENOENT for a link of a device that does not exist', async () => {
    for (const call of [
      () => sysfs.driver(GHOST),
      () => sysfs.iommuGroup(GHOST),
      () => sysfs.physfn(GHOST),
      () => sysfs.virtfns(GHOST),
    ]) {
      const err = await rejection(call());
      assert.ok(err instanceof KernelError);
      assert.equal(err.errno, 'ENOENT');
    }
  });

  it('lists drivers sorted', async () => {
    assert.deepEqual(await sysfs.listDrivers(), ['igb', 'igbvf', 'vfio-pci']);
  });

  it('binds, unbinds and probes by writing the address where the kernel reads it', async () => {
    await sysfs.bind(vf(0), 'igbvf');
    assert.equal(await readFile(join(root, 'bus/pci/drivers/igbvf/bind'), 'utf8'), `${vf(0)}\n`);
    await sysfs.unbind(PF);
    assert.equal(await readFile(join(root, 'bus/pci/drivers/igb/unbind'), 'utf8'), `${PF}\n`);
    await sysfs.probe(vf(1));
    assert.equal(await readFile(join(root, 'bus/pci/drivers_probe'), 'utf8'), `${vf(1)}\n`);
  });

  it('does nothing to unbind a device without a driver', async () => {
    await sysfs.unbind(vf(2));
    assert.equal(await readFile(join(root, 'bus/pci/drivers/igbvf/unbind'), 'utf8'), '');
  });

  it('answers ENOENT for a driver that is not loaded', async () => {
    const err = await rejection(sysfs.bind(PF, 'mlx5_core'));
    assert.ok(err instanceof KernelError);
    assert.equal(
      err.message,
      `cannot bind ${PF} to driver mlx5_core (ENOENT on ${join(root, 'bus/pci/drivers/mlx5_core/bind')})`,
    );
  });

  it('refuses a name that could leave the directory before touching any path', async () => {
    for (const bad of ['..', '.', '../igb', 'igb/bind', '', 'a'.repeat(65), 'vfio pci']) {
      const err = await rejection(sysfs.bind(PF, bad));
      assert.equal(err.code, 'INVALID_ARGUMENT', bad);
    }
    await assert.rejects(sysfs.moduleParameter('../vfio_pci', 'x'), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(sysfs.moduleParameter('vfio_pci', '..'), {
      message: 'invalid module parameter name ".."',
    });
  });

  it('reads module parameters, null when the module or the parameter is absent', async () => {
    assert.equal(await sysfs.moduleParameter('vfio_pci', 'enable_sriov'), 'Y');
    assert.equal(await sysfs.moduleParameter('vfio_pci', 'disable_idle_d3'), null);
    assert.equal(await sysfs.moduleParameter('igb', 'max_vfs'), null);
  });

  it('reports an errno outside the kernel set with the errno in its details', async () => {
    const err = await rejection(sysfs.writeAttribute(BRIDGE, 'reset_method', 'flr'));
    assert.equal(err instanceof KernelError, false);
    assert.equal(err.code, 'KERNEL_REFUSED');
    assert.deepEqual(err.details, {
      errno: 'EISDIR',
      path: join(root, 'bus/pci/devices', BRIDGE, 'reset_method'),
    });
    assert.equal(
      err.message,
      `cannot set reset_method of ${BRIDGE} to flr (EISDIR on ${String(err.details['path'])})`,
    );
  });

  it('fails the way the simulator fails, path root aside', async () => {
    const sim = await SysfsSimulator.fromFixture(repoPath('test/fixtures/hosts/qemu-igb-guest.yaml'));
    const calls = [
      (s: Sysfs) => s.readAttribute(GHOST, 'vendor'),
      (s: Sysfs) => s.driver(GHOST),
      (s: Sysfs) => s.bind(PF, 'mlx5_core'),
      (s: Sysfs) => s.writeAttribute(vf(0), 'sriov_numvfs', '1'),
    ];
    for (const call of calls) {
      const a = await rejection(call(sysfs));
      const b = await rejection(call(sim));
      assert.equal(a.message.replace(root, '/sys'), b.message);
      assert.deepEqual({ ...a.details, path: String(a.details['path']).replace(root, '/sys') }, b.details);
    }
  });
});

async function rejection(p: Promise<unknown>): Promise<VfbError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof VfbError, `expected a VfbError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'));
    return err;
  }
  assert.fail('expected a rejection');
}
