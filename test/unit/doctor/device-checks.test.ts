/** The per-device checks: device, pf-configured, pf-driver, vf-driver, kernel-log. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runDoctor } from '../../../src/doctor/doctor.js';
import { KernelError } from '../../../src/errors.js';
import { parsePciAddress } from '../../../src/pci/address.js';
import {
  CX5,
  NO_ROTATION,
  CX5_VF,
  GPU,
  OTHER_TOKEN,
  PF,
  UIO_PF,
  VF0,
  VF1,
  doctor,
  environment,
  healthyWorld,
  one,
  only,
  type World,
} from './world.js';

/** VF1 leaves vfio-pci for the host's igbvf, as an administrator would move it (issue 11 §1). */
async function vfOnIgbvf(world: World): Promise<void> {
  await world.sysfs.unbind(VF1);
  await world.sysfs.writeAttribute(VF1, 'driver_override', '');
  await world.sysfs.bind(VF1, 'igbvf');
}

/** The spare 82576 moves to igb_uio and gets VFs through it, as DPDK's old recipe does (issue 11 §4). */
async function pfOnIgbUio(world: World): Promise<void> {
  await world.sysfs.unbind(UIO_PF);
  await world.sysfs.bind(UIO_PF, 'igb_uio');
  await world.sysfs.writeAttribute(UIO_PF, 'sriov_numvfs', '2');
}

/** A VFIO open the kernel refuses; the refusal itself is not what these tests are about. */
async function refusedOpen(world: World, request: string): Promise<void> {
  await assert.rejects(
    world.sysfs.vfio.openDevice(request),
    (err) => err instanceof KernelError && err.errno === 'EACCES',
  );
}

describe('doctor: device (--vf)', () => {
  it('names the VF and its PF', async () => {
    const f = one(await doctor(await healthyWorld(), { kind: 'vf', address: VF1 }), 'device', VF1);
    assert.deepEqual([f.status, f.what], ['ok', '0000:3b:10.2 is VF 1 of PF 0000:3b:00.0']);
  });

  it('takes a PF as the PF and all its VFs', async () => {
    const report = await doctor(await healthyWorld(), { kind: 'vf', address: PF });
    assert.equal(
      one(report, 'device', PF).what,
      '0000:3b:00.0 is a PF with 4 VF(s): checking it and its VFs',
    );
    assert.equal(one(report, 'vf-driver', PF).what, 'the 4 VFs of PF 0000:3b:00.0 are on vfio-pci');
  });

  it('skips a device that is neither, and fails one that is not there', async () => {
    const world = await healthyWorld();
    const gpu = one(await doctor(world, { kind: 'vf', address: GPU }), 'device', GPU);
    assert.deepEqual(
      [gpu.status, gpu.what],
      ['skip', '0000:65:00.0 is not a VF: no VF token is involved in opening it'],
    );
    const gone = parsePciAddress('0000:3b:11.6');
    const report = await doctor(world, { kind: 'vf', address: gone });
    const f = one(report, 'device', gone);
    assert.deepEqual([f.status, f.what], ['fail', 'there is no PCI device 0000:3b:11.6 on this host']);
    assert.equal(only(report, 'pf-driver').length, 0);
  });
});

describe('doctor: pf-configured', () => {
  it('is ok for a PF in broker.yaml', async () => {
    const f = one(await doctor(await healthyWorld()), 'pf-configured', PF);
    assert.deepEqual(
      [f.status, f.what],
      ['ok', 'PF 0000:3b:00.0 is in /etc/vfbroker/broker.yaml (plugin igb, 4 VFs)'],
    );
  });

  it('fails a PF on vfio-pci that broker.yaml does not list, with the entry to add', async () => {
    const world = await healthyWorld();
    world.config = 'hostId: node-7\nstore: { type: file }\n';
    const f = one(await doctor(world, { kind: 'vf', address: VF0 }), 'pf-configured', PF);
    assert.equal(f.status, 'fail');
    assert.equal(f.what, 'PF 0000:3b:00.0 is on vfio-pci but not in /etc/vfbroker/broker.yaml');
    assert.equal(
      f.fix,
      `add "- { address: '0000:3b:00.0', vfs: 4 }" under pfs: in /etc/vfbroker/broker.yaml, then systemctl restart vfbroker`,
    );
  });

  it('skips a PF that is not on vfio-pci and not configured', async () => {
    const f = one(
      await doctor(await healthyWorld(), { kind: 'vf', address: UIO_PF }),
      'pf-configured',
      UIO_PF,
    );
    assert.deepEqual(
      [f.status, f.what],
      ['skip', 'PF 0000:5e:00.0 is not in /etc/vfbroker/broker.yaml: vfbroker does not manage it'],
    );
  });
});

describe('doctor: pf-driver', () => {
  it('is ok for a PF on vfio-pci and for one on a kernel driver that needs no token', async () => {
    const report = await doctor(await healthyWorld());
    const pf = one(report, 'pf-driver', PF);
    assert.deepEqual(
      [pf.status, pf.what],
      ['ok', 'PF 0000:3b:00.0 is on vfio-pci with 4 VF(s): opening them needs its VF token'],
    );
    const cx5 = one(report, 'pf-driver', CX5);
    assert.deepEqual(
      [cx5.status, cx5.what],
      ['ok', 'PF 0000:af:00.0 is on mlx5_core: its VFs need no VF token'],
    );
  });

  it('fails a PF on igb_uio with SR-IOV on: its VFs have no token protection (issue 11 §4)', async () => {
    const world = await healthyWorld();
    await pfOnIgbUio(world);
    const f = one(await doctor(world, { kind: 'vf', address: UIO_PF }), 'pf-driver', UIO_PF);
    assert.equal(f.status, 'fail');
    assert.equal(f.what, 'PF 0000:5e:00.0 is on igb_uio with 2 VF(s): they have no token protection');
    assert.equal(
      f.fix,
      'stop the application that drives the PF, then: echo 0 > /sys/bus/pci/devices/0000:5e:00.0/sriov_numvfs && ' +
        'modprobe vfio-pci enable_sriov=1 && echo 0000:5e:00.0 > /sys/bus/pci/devices/0000:5e:00.0/driver/unbind && ' +
        'echo vfio-pci > /sys/bus/pci/devices/0000:5e:00.0/driver_override && echo 0000:5e:00.0 > /sys/bus/pci/drivers_probe; ' +
        'then list it under pfs: in /etc/vfbroker/broker.yaml and systemctl restart vfbroker (the broker creates the VFs and sets their token)',
    );
  });

  it('fails a PF its plugin wants on vfio-pci but that sits on a kernel driver', async () => {
    const world = await healthyWorld();
    world.config = `hostId: node-7\nstore: { type: file }\npfs:\n  - { address: "0000:5e:00.0", plugin: igb, vfs: 2 }\n`;
    world.broker.pfs = [
      {
        address: UIO_PF,
        plugin: 'igb',
        state: 'degraded',
        numVfs: 0,
        needsToken: true,
        generation: 1,
        rotationMode: 'live',
        leases: 0,
        ...NO_ROTATION,
      },
    ];
    const f = one(await doctor(world), 'pf-driver', UIO_PF);
    assert.deepEqual(
      [f.status, f.what, f.fix],
      [
        'fail',
        'PF 0000:5e:00.0 is on igb, but its plugin igb drives it from vfio-pci',
        'vfbroker pf up 0000:5e:00.0 (it binds the PF to vfio-pci); journalctl -u vfbroker says why it is not',
      ],
    );
    world.broker.reachable = false;
    const unknown = one(await doctor(world), 'pf-driver', UIO_PF);
    assert.equal(unknown.status, 'skip');
  });

  it('fails a configured PF without a driver, and one that is not there', async () => {
    const world = await healthyWorld();
    await world.sysfs.unbind(CX5);
    const unbound = one(await doctor(world), 'pf-driver', CX5);
    assert.deepEqual(
      [unbound.status, unbound.what, unbound.fix],
      [
        'fail',
        'PF 0000:af:00.0 has no driver',
        "vfbroker pf up 0000:af:00.0 (it binds the PF to its plugin's driver); journalctl -u vfbroker says why it is not",
      ],
    );
    world.config = `hostId: node-7\nstore: { type: file }\npfs:\n  - { address: "0000:d8:00.0", vfs: 2 }\n`;
    const missing = one(await doctor(world), 'pf-driver', '0000:d8:00.0');
    assert.deepEqual(
      [missing.status, missing.what, missing.fix],
      [
        'fail',
        'there is no PCI device 0000:d8:00.0 on this host',
        'lspci -D lists the devices; correct the address in /etc/vfbroker/broker.yaml',
      ],
    );
  });
});

describe('doctor: vf-driver', () => {
  it('is ok for VFs on vfio-pci or unbound with its override', async () => {
    const world = await healthyWorld();
    await world.sysfs.unbind(VF0);
    const f = one(await doctor(world), 'vf-driver', PF);
    assert.deepEqual(
      [f.status, f.what],
      ['ok', 'the 4 VFs of PF 0000:3b:00.0 are on vfio-pci or unbound with driver_override=vfio-pci'],
    );
  });

  it('warns about a VF of a vfio-pci PF on a host driver: outside token protection (issue 11 §1)', async () => {
    const world = await healthyWorld();
    await vfOnIgbvf(world);
    const f = one(await doctor(world, { kind: 'vf', address: VF1 }), 'vf-driver', VF1);
    assert.equal(f.status, 'warn');
    assert.equal(f.what, 'VF 0000:3b:10.2 (igbvf) of PF 0000:3b:00.0 is not on vfio-pci');
    assert.equal(
      f.fix,
      'echo 0000:3b:10.2 > /sys/bus/pci/devices/0000:3b:10.2/driver/unbind && echo vfio-pci > /sys/bus/pci/devices/0000:3b:10.2/driver_override && ' +
        'echo 0000:3b:10.2 > /sys/bus/pci/drivers_probe',
    );
    // The kernel saw it too.
    assert.ok(
      (await world.sysfs.readKernelLog()).includes(
        'vfio-pci 0000:3b:00.0: VF 0000:3b:10.2 bound to driver igbvf while PF bound to driver vfio-pci',
      ),
    );
  });

  it('accepts the VF driver the configuration asks for', async () => {
    const world = await healthyWorld();
    await vfOnIgbvf(world);
    world.config = `hostId: node-7\nstore: { type: file }\npfs:\n  - { address: "0000:3b:00.0", plugin: igb, vfs: 4, options: { vfDriver: igbvf } }\n`;
    assert.equal(one(await doctor(world), 'vf-driver', PF).status, 'ok');
  });

  it('lists every stray VF, unbound ones without the unbind', async () => {
    const world = await healthyWorld();
    await vfOnIgbvf(world);
    await world.sysfs.unbind(VF0);
    await world.sysfs.writeAttribute(VF0, 'driver_override', '');
    const f = one(await doctor(world), 'vf-driver', PF);
    assert.equal(
      f.what,
      'VFs 0000:3b:10.0 (unbound), 0000:3b:10.2 (igbvf) of PF 0000:3b:00.0 are not on vfio-pci',
    );
    assert.ok(
      f.fix.startsWith(
        'echo vfio-pci > /sys/bus/pci/devices/0000:3b:10.0/driver_override && echo 0000:3b:10.0 > /sys/bus/pci/drivers_probe && echo 0000:3b:10.2 > ',
      ),
    );
  });

  it('skips the VFs of a PF on a kernel driver', async () => {
    const f = one(await doctor(await healthyWorld(), { kind: 'vf', address: CX5_VF }), 'vf-driver', CX5_VF);
    assert.deepEqual([f.status, f.what], ['skip', 'VF 0000:af:00.2: no VF token involved (PF on mlx5_core)']);
  });
});

describe('doctor: a check that cannot finish', () => {
  it('is reported as not done, and the others still run', async () => {
    const world = await healthyWorld();
    const sim = world.sysfs;
    // sysfs refuses one read, as it would for a device that vanished mid-check.
    const flaky = Object.create(sim, {
      driver: {
        value: (addr: typeof PF) =>
          addr === PF
            ? Promise.reject(
                new KernelError(
                  'ENODEV',
                  `/sys/bus/pci/devices/${PF}/driver`,
                  `cannot read the driver of ${PF}`,
                ),
              )
            : sim.driver(addr),
      },
    }) as typeof sim;
    const report = await runDoctor({ ...environment(world), sysfs: flaky }, { kind: 'vf', address: VF0 });
    const f = one(report, 'pf-driver', PF);
    assert.equal(f.status, 'skip');
    assert.equal(
      f.what,
      `could not check: cannot read the driver of ${PF} (ENODEV on /sys/bus/pci/devices/${PF}/driver)`,
    );
    assert.equal(one(report, 'pf-token', PF).status, 'ok');
  });
});

describe('doctor: kernel-log', () => {
  it('is ok when the kernel refused no open of the VF', async () => {
    const f = one(await doctor(await healthyWorld(), { kind: 'vf', address: VF0 }), 'kernel-log', VF0);
    assert.deepEqual([f.status, f.what], ['ok', 'the kernel log shows no refused open of VF 0000:3b:10.0']);
  });

  it('quotes the latest refusal for the VF and counts them', async () => {
    const world = await healthyWorld();
    await refusedOpen(world, VF0);
    await refusedOpen(world, `${VF1} vf_token=${OTHER_TOKEN}`);
    await refusedOpen(world, `${VF0} vf_token=${OTHER_TOKEN}`);
    const f = one(await doctor(world, { kind: 'vf', address: VF0 }), 'kernel-log', VF0);
    assert.equal(f.status, 'warn');
    assert.equal(
      f.what,
      'the kernel refused to open VF 0000:3b:10.0 2 time(s); the latest: "vfio-pci 0000:3b:10.0: Incorrect VF token provided for device"',
    );
    assert.match(f.why, /^the VF was opened with a token that is not its PF’s/);
    assert.equal(
      f.fix,
      'a libvirt guest: vfbroker guest sync GUEST; a DPDK application: --vfio-vf-token=$(vfbroker token get --vf 0000:3b:10.0)',
    );
    const pf = one(await doctor(world), 'kernel-log', PF);
    assert.match(pf.what, /^the kernel refused to open the VFs of PF 0000:3b:00.0 3 time\(s\)/);
  });

  it('tells to open a VF of a kernel-driver PF without a token', async () => {
    const world = await healthyWorld();
    await world.sysfs.unbind(CX5_VF);
    await world.sysfs.writeAttribute(CX5_VF, 'driver_override', 'vfio-pci');
    await world.sysfs.probe(CX5_VF);
    await assert.rejects(world.sysfs.vfio.openDevice(`${CX5_VF} vf_token=${OTHER_TOKEN}`));
    const f = one(await doctor(world, { kind: 'vf', address: CX5_VF }), 'kernel-log', CX5_VF);
    assert.equal(
      f.what,
      'the kernel refused to open VF 0000:af:00.2 1 time(s); the latest: "vfio-pci 0000:af:00.2: VF token incorrectly provided, PF not bound to vfio-pci"',
    );
    assert.equal(
      f.fix,
      'open VF 0000:af:00.2 without a token (no vf-token in a guest definition, no --vfio-vf-token)',
    );
  });

  it('is skipped once for the host when the log cannot be read', async () => {
    const world = await healthyWorld();
    world.kernelLog = { readable: false, reason: 'cannot open /dev/kmsg: EACCES' };
    const report = await doctor(world);
    assert.deepEqual(only(report, 'kernel-log'), [
      {
        id: 'kernel-log',
        status: 'skip',
        subject: null,
        what: 'the kernel log is not readable (cannot open /dev/kmsg: EACCES)',
        why: 'vfio-pci reports a refused VF open only there',
        fix: 'run vfbroker doctor as root',
      },
    ]);
  });
});
