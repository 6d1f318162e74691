import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KernelError } from '../../../src/errors.js';
import { parsePciAddress, type PciAddress } from '../../../src/pci/address.js';
import { SysfsSimulator } from '../../../src/sysfs/simulator.js';
import { repoPath } from '../../support/repo.js';

const host = (name: string) => SysfsSimulator.fromFixture(repoPath('test/fixtures/hosts', name));
const a = (s: string): PciAddress => parsePciAddress(s);

async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KernelError, String(err));
    return err.errno;
  }
  return 'OK';
}

describe('shipped host fixtures', () => {
  const expected: Record<string, string[]> = {
    'qemu-igb-guest.yaml': ['0000:00:00.0', '0000:00:04.0'],
    'igb-82576.yaml': ['0000:04:00.0', '0000:04:00.1'],
    'acc100.yaml': ['0000:b1:00.0'],
    'n3000.yaml': ['0000:1e:00.0', '0000:1f:00.0'],
    'connectx5.yaml': ['0000:5e:00.0', '0000:5e:00.1'],
    'qemu-nvme.yaml': ['0000:00:04.0'],
  };
  for (const [name, devices] of Object.entries(expected)) {
    it(`${name} loads with its devices`, async () => {
      assert.deepEqual(await (await host(name)).listDevices(), devices);
    });
  }

  it('the demo host has the 82576 on igb, the ACC100 unbound and the ConnectX-5 on mlx5_core', async () => {
    const sim = await SysfsSimulator.fromFixture(repoPath('etc/vfbroker/simulated-host.yaml'));
    assert.equal(await sim.driver(a('0000:04:00.0')), 'igb');
    assert.equal(await sim.driver(a('0000:b1:00.0')), null);
    assert.equal(await sim.driver(a('0000:5e:00.0')), 'mlx5_core');
    assert.equal(await sim.readAttribute(a('0000:b1:00.0'), 'sriov_totalvfs'), '16');
    assert.equal(await sim.moduleParameter('vfio_pci', 'disable_idle_d3'), 'Y');
    // igb's limit: 7 of the 8 VFs the 82576 offers, in sriov_totalvfs since its probe.
    assert.equal(await sim.readAttribute(a('0000:04:00.0'), 'sriov_totalvfs'), '7');
    assert.equal(await errnoOf(sim.writeAttribute(a('0000:04:00.0'), 'sriov_numvfs', '8')), 'ERANGE');
    assert.equal(await errnoOf(sim.writeAttribute(a('0000:04:00.0'), 'sriov_numvfs', '7')), 'OK');
  });
});

describe('what the simulated devices report', () => {
  it('formats attributes as the kernel prints them', async () => {
    const sim = await host('qemu-igb-guest.yaml');
    const pf = a('0000:00:04.0');
    const read = (name: Parameters<typeof sim.readAttribute>[1]) => sim.readAttribute(pf, name);
    assert.deepEqual(
      [await read('vendor'), await read('device'), await read('class'), await read('numa_node')],
      ['0x8086', '0x10c9', '0x020000', '-1'],
    );
    assert.deepEqual(
      [
        await read('sriov_offset'),
        await read('sriov_stride'),
        await read('sriov_vf_device'),
        await read('reset_method'),
      ],
      ['128', '2', '10ca', 'flr pm'],
    );
  });

  it('puts VFs where offset and stride say, on every port (82576: 04:10.0, 04:10.2 / 04:10.1, 04:10.3)', async () => {
    const sim = await host('igb-82576.yaml');
    for (const pf of [a('0000:04:00.0'), a('0000:04:00.1')])
      await sim.writeAttribute(pf, 'sriov_numvfs', '2');
    assert.deepEqual(await sim.virtfns(a('0000:04:00.0')), ['0000:04:10.0', '0000:04:10.2']);
    assert.deepEqual(await sim.virtfns(a('0000:04:00.1')), ['0000:04:10.1', '0000:04:10.3']);
    assert.equal(await sim.readAttribute(a('0000:04:10.3'), 'reset_method'), 'flr');
    assert.equal(await sim.readAttribute(a('0000:04:10.3'), 'numa_node'), '0');
  });

  it('gives new VFs the lowest free IOMMU group numbers, as the kernel allocates them', async () => {
    const sim = await host('qemu-igb-guest.yaml');
    const pf = a('0000:00:04.0');
    await sim.writeAttribute(pf, 'sriov_numvfs', '3');
    const groups = await Promise.all((await sim.virtfns(pf)).map((vf) => sim.iommuGroup(vf)));
    assert.deepEqual(groups, [1, 3, 4]); // 0 is the host bridge's, 2 the PF's
  });

  it('has the ConnectX-5 VFs probed by mlx5_core', async () => {
    const sim = await host('connectx5.yaml');
    await sim.writeAttribute(a('0000:5e:00.1'), 'sriov_numvfs', '2');
    const vfs = await sim.virtfns(a('0000:5e:00.1'));
    assert.deepEqual(vfs, ['0000:5e:01.2', '0000:5e:01.3']);
    for (const vf of vfs) assert.equal(await sim.driver(vf), 'mlx5_core');
  });

  it('shows no SR-IOV on the N3000 management function', async () => {
    const sim = await host('n3000.yaml');
    assert.equal(await errnoOf(sim.readAttribute(a('0000:1e:00.0'), 'sriov_totalvfs')), 'ENOENT');
    assert.equal(await sim.readAttribute(a('0000:1f:00.0'), 'sriov_vf_device'), 'd90');
  });
});

describe('kernel behaviours the case table cannot reach on the test guest', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfb-sim-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function fromYaml(yaml: string): Promise<SysfsSimulator> {
    const file = join(dir, `host-${Math.random().toString(16).slice(2)}.yaml`);
    await writeFile(file, yaml);
    return SysfsSimulator.fromFixture(file);
  }

  const NVME = (extra = '') => `
drivers: [vfio-pci]
${extra}
devices:
  - { address: "0000:00:04.0", id: "1b36:0010", class: "010802", driver: vfio-pci, driverOverride: vfio-pci,
      iommuGroup: 3, sriov: { totalVfs: 2, offset: 1, stride: 1, vfDevice: "0010" } }
  - { address: "0000:00:05.0", id: "1b36:0010", class: "010802" }
`;

  it('answers ENOENT to sriov_numvfs on a vfio-pci PF while enable_sriov is N', async () => {
    const sim = await fromYaml(NVME());
    assert.equal(await sim.moduleParameter('vfio_pci', 'enable_sriov'), 'N');
    assert.equal(await errnoOf(sim.writeAttribute(a('0000:00:04.0'), 'sriov_numvfs', '1')), 'ENOENT');
    assert.deepEqual(await sim.virtfns(a('0000:00:04.0')), []);
  });

  it('refuses to bind vfio-pci to a device in no IOMMU group, logging the probe failure', async () => {
    const sim = await fromYaml(NVME('modules: { vfio_pci: { enable_sriov: Y } }'));
    const plain = a('0000:00:05.0');
    await sim.writeAttribute(plain, 'driver_override', 'vfio-pci');
    assert.equal(await errnoOf(sim.bind(plain, 'vfio-pci')), 'EINVAL');
    assert.deepEqual(sim.kernelLog(), ['vfio-pci: probe of 0000:00:05.0 failed with error -22']);
  });

  it('logs what the kernel logs when it refuses sriov_numvfs', async () => {
    const sim = await host('qemu-igb-guest.yaml');
    const pf = a('0000:00:04.0');
    await sim.writeAttribute(pf, 'sriov_numvfs', '1');
    await errnoOf(sim.writeAttribute(pf, 'sriov_numvfs', '2'));
    await sim.unbind(pf);
    await errnoOf(sim.writeAttribute(pf, 'sriov_numvfs', '2'));
    await sim.bind(pf, 'igb');
    await sim.writeAttribute(pf, 'driver_override', 'igbvf');
    await sim.unbind(pf);
    await sim.bind(pf, 'igbvf');
    await errnoOf(sim.writeAttribute(pf, 'sriov_numvfs', '2'));
    assert.deepEqual(sim.kernelLog(), [
      'igb 0000:00:04.0: 1 VFs already enabled. Disable before enabling 2 VFs',
      'pci 0000:00:04.0: no driver bound to device; cannot configure SR-IOV',
      'igbvf 0000:00:04.0: driver does not support SR-IOV configuration via sysfs',
    ]);
  });

  it('keeps the VFs of pci-pf-stub after it is unbound, with the kernel warning', async () => {
    const sim = await host('qemu-igb-guest.yaml');
    const pf = a('0000:00:04.0');
    await sim.writeAttribute(pf, 'driver_override', 'pci-pf-stub');
    await sim.unbind(pf);
    await sim.probe(pf);
    await sim.writeAttribute(pf, 'sriov_numvfs', '2');
    await sim.unbind(pf);
    assert.equal(await sim.readAttribute(pf, 'sriov_numvfs'), '2');
    assert.equal(sim.kernelLog().at(-1), 'pci-pf-stub 0000:00:04.0: driver left SR-IOV enabled after remove');
    assert.equal(await errnoOf(sim.bind(pf, 'pci-pf-stub')), 'OK');
    assert.equal(await errnoOf(sim.writeAttribute(pf, 'sriov_numvfs', '0')), 'OK');
  });

  it('keeps TotalVFs when igb binds over VFs another driver left (pci_sriov_set_totalvfs: EBUSY)', async () => {
    const sim = await host('qemu-igb-guest.yaml');
    const pf = a('0000:00:04.0');
    await sim.writeAttribute(pf, 'driver_override', 'pci-pf-stub');
    await sim.unbind(pf);
    await sim.probe(pf);
    assert.equal(await sim.readAttribute(pf, 'sriov_totalvfs'), '8');
    await sim.writeAttribute(pf, 'sriov_numvfs', '2');
    await sim.unbind(pf);
    await sim.writeAttribute(pf, 'driver_override', '');
    await sim.bind(pf, 'igb');
    assert.equal(await sim.readAttribute(pf, 'sriov_totalvfs'), '8');
  });

  it('ignores a driver limit above TotalVFs, as pci_sriov_set_totalvfs does (EINVAL)', async () => {
    const sim = await fromYaml(`
drivers: [{ name: acme-pf, ids: ["1234:0001"], sriovConfigure: true, setsTotalVfs: 9 }]
devices:
  - { address: "0000:10:00.0", id: "1234:0001", class: "ff0000", driver: acme-pf,
      sriov: { totalVfs: 4, offset: 1, stride: 1, vfDevice: "0002" } }
`);
    assert.equal(await sim.readAttribute(a('0000:10:00.0'), 'sriov_totalvfs'), '4');
  });

  it('stores driver_override as driver_set_override does', async () => {
    const sim = await host('qemu-igb-guest.yaml');
    const pf = a('0000:00:04.0');
    await sim.writeAttribute(pf, 'driver_override', 'vfio-pci\nigb');
    assert.equal(await sim.readAttribute(pf, 'driver_override'), 'vfio-pci');
    assert.equal(await errnoOf(sim.writeAttribute(pf, 'driver_override', 'x'.repeat(4094))), 'EINVAL');
    assert.equal(await sim.readAttribute(pf, 'driver_override'), 'vfio-pci');
  });

  it('accepts reset methods the device supports, in the order given', async () => {
    const sim = await host('qemu-igb-guest.yaml');
    const pf = a('0000:00:04.0');
    await sim.writeAttribute(pf, 'reset_method', 'pm flr');
    assert.equal(await sim.readAttribute(pf, 'reset_method'), 'pm flr');
    assert.equal(await errnoOf(sim.writeAttribute(pf, 'reset_method', 'bus')), 'EINVAL');
    assert.equal(sim.kernelLog().at(-1), "igb 0000:00:04.0: Unsupported reset method 'bus'");
  });

  it('answers EBUSY instead of blocking when a VF or PF open through VFIO would be removed', async () => {
    const sim = await host('qemu-igb-guest.yaml');
    const pf = a('0000:00:04.0');
    await sim.writeAttribute(pf, 'driver_override', 'vfio-pci');
    await sim.unbind(pf);
    await sim.probe(pf);
    await sim.writeAttribute(pf, 'sriov_numvfs', '1');
    const pfHandle = await sim.vfio.openDevice(pf);
    assert.equal(await errnoOf(sim.unbind(pf)), 'EBUSY');
    await sim.vfio.closeDevice(pfHandle);
    const [vf] = await sim.virtfns(pf);
    assert.ok(vf);
    const token = '0b7a1d52-7c2e-4a0e-9d3f-5e6a7b8c9d0e';
    await sim.vfio.setVfToken(await sim.vfio.openDevice(`${pf} vf_token=${token}`), token);
    await sim.vfio.openDevice(`${vf} vf_token=${token}`);
    assert.equal(await errnoOf(sim.writeAttribute(pf, 'sriov_numvfs', '0')), 'EBUSY');
    assert.equal(await sim.driver(vf), 'vfio-pci');
  });

  it('names /sys paths in its errors, as RealSysfs does on a real host', async () => {
    const sim = await host('qemu-igb-guest.yaml');
    await assert.rejects(sim.writeAttribute(a('0000:00:04.0'), 'sriov_numvfs', '9'), {
      message:
        'cannot set sriov_numvfs of 0000:00:04.0 to 9 (ERANGE on /sys/bus/pci/devices/0000:00:04.0/sriov_numvfs)',
      errno: 'ERANGE',
      path: '/sys/bus/pci/devices/0000:00:04.0/sriov_numvfs',
    });
    await assert.rejects(sim.probe(a('0000:00:09.0')), {
      message: 'cannot probe drivers for 0000:00:09.0 (ENODEV on /sys/bus/pci/drivers_probe)',
    });
  });

  it('resets to the fixture, and its snapshots are copies', async () => {
    const sim = await host('qemu-igb-guest.yaml');
    const start = sim.snapshot();
    await sim.writeAttribute(a('0000:00:04.0'), 'sriov_numvfs', '2');
    const snap = sim.snapshot();
    snap.devices = {};
    assert.equal((await sim.listDevices()).length, 4);
    await sim.reset();
    assert.deepEqual(sim.snapshot(), start);
  });
});
