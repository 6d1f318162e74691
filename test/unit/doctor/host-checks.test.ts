/** The host-wide checks: config, vfio-pci, kernel, qemu, hook. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VF0, QEMU_7_2, doctor, healthyWorld, one, type World } from './world.js';

const MODPROBE_CONF = "echo 'options vfio-pci enable_sriov=1' > /etc/modprobe.d/vfbroker-vfio-pci.conf";

function setEnableSriov(world: World, value: string | null): void {
  const state = world.sysfs.snapshot();
  if (value === null) {
    state.drivers = state.drivers.filter((d) => d.name !== 'vfio-pci');
    delete state.modules['vfio_pci'];
  } else {
    state.modules['vfio_pci'] = { ...state.modules['vfio_pci'], enable_sriov: value };
  }
  world.sysfs.restore(state);
}

describe('doctor: config', () => {
  it('counts the configured PFs', async () => {
    const f = one(await doctor(await healthyWorld()), 'config');
    assert.deepEqual([f.status, f.what], ['ok', '/etc/vfbroker/broker.yaml configures 2 PFs']);
  });

  it('fails with the loader’s message and hint when broker.yaml cannot be read, and checks on', async () => {
    const world = await healthyWorld();
    world.config = null;
    const report = await doctor(world);
    const f = one(report, 'config');
    assert.equal(f.status, 'fail');
    assert.equal(f.what, '/etc/vfbroker/broker.yaml: cannot open the file (ENOENT)');
    assert.equal(f.fix, 'check that the file exists and that vfbroker may read it');
    assert.equal(one(report, 'vfio-pci').status, 'ok');
  });

  it('names the file, line and column of an invalid broker.yaml', async () => {
    const world = await healthyWorld();
    world.config = 'hostId: node-7\nstore: { type: vault }\n';
    const f = one(await doctor(world), 'config');
    assert.equal(f.status, 'fail');
    assert.match(f.what, /^\/etc\/vfbroker\/broker\.yaml:2:\d+/);
  });
});

describe('doctor: vfio-pci', () => {
  it('is ok when vfio-pci is loaded with enable_sriov=Y', async () => {
    const f = one(await doctor(await healthyWorld()), 'vfio-pci');
    assert.deepEqual([f.status, f.what], ['ok', 'vfio-pci is loaded with enable_sriov=Y']);
  });

  it('fails without enable_sriov, with the runtime and the persistent fix', async () => {
    const world = await healthyWorld();
    setEnableSriov(world, 'N');
    const f = one(await doctor(world), 'vfio-pci');
    assert.equal(f.status, 'fail');
    assert.equal(f.what, 'vfio-pci is loaded with enable_sriov=N');
    assert.equal(
      f.fix,
      `echo Y > /sys/module/vfio_pci/parameters/enable_sriov && ${MODPROBE_CONF} (vfio-pci built into the kernel: add vfio-pci.enable_sriov=1 to the kernel command line)`,
    );
  });

  it('fails when vfio-pci is not loaded, with modprobe', async () => {
    const world = await healthyWorld();
    setEnableSriov(world, null);
    const f = one(await doctor(world), 'vfio-pci');
    assert.deepEqual(
      [f.status, f.what, f.fix],
      ['fail', 'vfio-pci is not loaded', `modprobe vfio-pci enable_sriov=1 && ${MODPROBE_CONF}`],
    );
  });

  it('accepts enable_sriov=N when no PF the broker manages needs a token', async () => {
    const world = await healthyWorld();
    setEnableSriov(world, 'N');
    world.broker.pfs = world.broker.pfs.filter((p) => !p.needsToken);
    const f = one(await doctor(world), 'vfio-pci');
    assert.deepEqual(
      [f.status, f.what],
      ['ok', 'vfio-pci is loaded with enable_sriov=N, and no PF the broker manages needs a VF token'],
    );
  });
});

describe('doctor: kernel', () => {
  async function kernel(release: string, cdev: boolean) {
    const world = await healthyWorld();
    world.release = release;
    world.cdev = cdev;
    return one(await doctor(world), 'kernel');
  }

  it('is ok on a kernel without the VFIO cdev path', async () => {
    const f = await kernel('6.1.0-27-amd64', false);
    assert.deepEqual(
      [f.status, f.what],
      ['ok', 'Linux 6.1.0 opens VFs only through VFIO groups, which check the VF token'],
    );
  });

  it('warns that 6.6–6.16 with /dev/vfio/devices check no token on the cdev path', async () => {
    const f = await kernel('6.8.0-45-generic', true);
    assert.equal(f.status, 'warn');
    assert.equal(
      f.what,
      'Linux 6.8.0 offers the VFIO cdev path (/dev/vfio/devices), which checks no VF token',
    );
    assert.match(f.why, /^Linux 6\.6 to 6\.16 check the token only on the group path/);
    assert.equal(
      f.fix,
      "boot Linux 6.18.3 or later; until then keep /dev/vfio/devices/* and /dev/iommu root-only and give guests no <driver iommufd='yes'/>",
    );
    assert.equal((await kernel('6.16.12', true)).status, 'warn');
    assert.equal((await kernel('6.8.0-45-generic', false)).status, 'ok');
  });

  it('warns that 6.17 to 6.18.2 fail a token on the cdev path with E2BIG', async () => {
    for (const release of ['6.17.0-5-generic', '6.18.2-arch1-1']) {
      const f = await kernel(release, true);
      assert.equal(f.status, 'warn', release);
      assert.match(
        f.what,
        /checks VF tokens on the VFIO cdev path \(\/dev\/vfio\/devices\) but fails a bind that carries one \(E2BIG\)$/,
      );
      assert.equal(
        f.fix,
        'boot Linux 6.18.3 or later (or a kernel with commit 2f03f21fe751 backported); meanwhile open VFs through /dev/vfio/<group>',
      );
    }
  });

  it('is ok from 6.18.3 on, cdev or not', async () => {
    for (const release of ['6.18.3', '6.19.1-1-default']) {
      const f = await kernel(release, true);
      assert.equal(f.status, 'ok', release);
      assert.match(f.what, /checks the VF token on both the VFIO group and the cdev path$/);
    }
  });

  it('fails before 5.7 and skips a release it cannot read', async () => {
    const old = await kernel('5.4.0-150-generic', false);
    assert.deepEqual(
      [old.status, old.what, old.fix],
      ['fail', 'Linux 5.4.0 has no VF tokens', 'boot Linux 5.7 or later'],
    );
    const odd = await kernel('custom', false);
    assert.deepEqual([odd.status, odd.what], ['skip', 'cannot tell the version of kernel release "custom"']);
  });
});

describe('doctor: qemu', () => {
  it('is ok for QEMU 8.1 and later', async () => {
    const f = one(await doctor(await healthyWorld()), 'qemu', 'qemu-system-x86_64');
    assert.deepEqual(
      [f.status, f.what],
      ['ok', 'QEMU 8.2.2 (qemu-system-x86_64) supports the vf-token property'],
    );
  });

  it('fails for QEMU 7.2, which has no vf-token property', async () => {
    const world = await healthyWorld();
    world.runner.onRun('qemu-system-x86_64', { stdout: QEMU_7_2 });
    const f = one(await doctor(world, { kind: 'vf', address: VF0 }), 'qemu', 'qemu-system-x86_64');
    assert.equal(f.status, 'fail');
    assert.equal(f.what, 'QEMU 7.2.0 (qemu-system-x86_64) has no vf-token property');
    assert.equal(f.fix, 'upgrade QEMU to 8.1 or later (Debian and Ubuntu: the package qemu-system-x86)');
  });

  it('skips a host without QEMU, and one whose QEMU prints no version', async () => {
    const world = await healthyWorld();
    world.runner.forget('qemu-system-x86_64');
    const missing = one(await doctor(world), 'qemu', 'qemu-system-x86_64');
    assert.deepEqual([missing.status, missing.what], ['skip', 'qemu-system-x86_64 is not installed']);
    world.runner.onRun('qemu-system-x86_64', { stdout: 'qemu\n' });
    const odd = one(await doctor(world), 'qemu', 'qemu-system-x86_64');
    assert.deepEqual(
      [odd.status, odd.what],
      ['skip', 'qemu-system-x86_64 --version does not say which QEMU it is'],
    );
  });
});

describe('doctor: hook', () => {
  it('fails when no hook is installed, and says how to install it', async () => {
    const world = await healthyWorld();
    world.hook = { hook: 'missing', settings: 'missing', cacheDirectory: 'missing' };
    const report = await doctor(world);
    const f = one(report, 'hook');
    assert.deepEqual(
      [f.status, f.what, f.fix],
      [
        'fail',
        'no libvirt hook at /etc/libvirt/hooks/qemu.d/vfbroker',
        'vfbroker install, then restart libvirt once (systemctl restart libvirtd, or virtqemud)',
      ],
    );
    assert.match(f.why, /starts guests unchecked/);
    assert.equal(report.failed, true);
  });

  it('warns about another vfbroker’s hook, stale settings and a missing cache directory, in that order', async () => {
    const world = await healthyWorld();
    const cases = [
      [
        { hook: 'differs', settings: 'differs', cacheDirectory: 'missing' },
        "the hook at /etc/libvirt/hooks/qemu.d/vfbroker is not this vfbroker's",
      ],
      [
        { hook: 'current', settings: 'differs', cacheDirectory: 'missing' },
        '/etc/vfbroker/hook.json does not match /etc/vfbroker/broker.yaml',
      ],
      [
        { hook: 'current', settings: 'missing', cacheDirectory: 'current' },
        '/etc/vfbroker/hook.json is missing',
      ],
      [
        { hook: 'current', settings: 'current', cacheDirectory: 'differs' },
        "the hook's code-cache directory /var/cache/vfbroker is missing or not 0700",
      ],
    ] as const;
    for (const [installed, what] of cases) {
      world.hook = installed;
      const report = await doctor(world);
      const f = one(report, 'hook');
      assert.deepEqual([f.status, f.what, f.fix], ['warn', what, 'vfbroker install']);
      assert.equal(report.failed, false, 'a warning is not a failure');
    }
  });

  it('skips a simulated host, whose libvirt is not the host’s', async () => {
    const world = await healthyWorld();
    world.hook = null;
    assert.equal(one(await doctor(world), 'hook').status, 'skip');
  });
});
