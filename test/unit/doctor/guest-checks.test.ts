/** --guest: guest-definition, guest-token, guest-iommufd, and the guest's own QEMU. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CX5_VF,
  GPU,
  QEMU_7_2,
  TOKEN,
  VF0,
  VF1,
  doctor,
  domainXml,
  healthyWorld,
  one,
  only,
  type World,
} from './world.js';

async function guestWorld(xml: string): Promise<World> {
  const world = await healthyWorld();
  world.guests.set('vm2', xml);
  return world;
}

const guest = { kind: 'guest', name: 'vm2' } as const;

describe('doctor: guest-definition', () => {
  it('counts the devices a readable definition passes through', async () => {
    const world = await guestWorld(
      domainXml('vm2', [{ address: VF0, alias: 'ua-vf0', token: TOKEN }, { address: GPU }]),
    );
    const f = one(await doctor(world, guest), 'guest-definition', 'vm2');
    assert.deepEqual(
      [f.status, f.what],
      ['ok', 'guest vm2 (0d2b8c7e-5a44-4f8e-bb2c-6f7e3b1d9a01) passes 2 PCI device(s) through'],
    );
  });

  it('fails with virsh’s answer for a guest libvirt does not know', async () => {
    const report = await doctor(await healthyWorld(), { kind: 'guest', name: 'nope' });
    const f = one(report, 'guest-definition', 'nope');
    assert.deepEqual(
      [f.status, f.what, f.fix],
      ['fail', 'libvirt has no guest named "nope"', '`virsh list --all` shows the guests libvirt knows'],
    );
    assert.equal(report.failed, true);
  });

  it('fails a definition that is not a domain', async () => {
    const f = one(await doctor(await guestWorld('<network/>'), guest), 'guest-definition', 'vm2');
    assert.deepEqual(
      [f.status, f.what],
      ['fail', 'the definition of guest "vm2" has root element <network> instead of <domain>'],
    );
  });
});

describe('doctor: guest-token', () => {
  it('reports a presented token without judging its generation', async () => {
    const world = await guestWorld(domainXml('vm2', [{ address: VF0, alias: 'ua-vf0', token: TOKEN }]));
    const f = one(await doctor(world, guest), 'guest-token', VF0);
    assert.equal(f.status, 'ok');
    assert.equal(f.what, 'guest vm2 presents a vf-token for VF 0000:3b:10.0 (alias ua-vf0)');
    assert.match(
      f.why,
      /the libvirt hook checks it at virsh start vm2; .*<qemu:override>, which taints the domain and does not apply to a VF hot-plugged later$/,
    );
  });

  it('fails a VF without vf-token or without an alias, with guest sync', async () => {
    const world = await guestWorld(domainXml('vm2', [{ address: VF0, alias: 'ua-vf0' }, { address: VF1 }]));
    const report = await doctor(world, guest);
    const missing = one(report, 'guest-token', VF0);
    assert.deepEqual(
      [missing.status, missing.what, missing.fix],
      [
        'fail',
        'guest vm2 presents no vf-token for VF 0000:3b:10.0 (alias ua-vf0)',
        'vfbroker guest sync vm2',
      ],
    );
    const noAlias = one(report, 'guest-token', VF1);
    assert.deepEqual(
      [noAlias.status, noAlias.what, noAlias.fix],
      [
        'fail',
        'VF 0000:3b:10.2 in guest vm2 has no alias, so no vf-token can be attached to it',
        'vfbroker guest sync vm2',
      ],
    );
    assert.equal(report.failed, true);
  });

  it('asks nothing of devices that need no token', async () => {
    const world = await guestWorld(domainXml('vm2', [{ address: CX5_VF }, { address: GPU }]));
    const report = await doctor(world, guest);
    assert.deepEqual(only(report, 'guest-token'), []);
    assert.deepEqual(only(report, 'guest-iommufd'), []);
    assert.equal(one(report, 'device', GPU).status, 'skip');
    assert.equal(report.failed, false);
  });
});

describe('doctor: guest-iommufd', () => {
  it('is ok for VFs on the VFIO group backend', async () => {
    const world = await guestWorld(domainXml('vm2', [{ address: VF0, alias: 'ua-vf0', token: TOKEN }]));
    const f = one(await doctor(world, guest), 'guest-iommufd', 'vm2');
    assert.deepEqual(
      [f.status, f.what],
      ['ok', 'guest vm2 opens its VFs through VFIO groups, where QEMU passes vf-token'],
    );
  });

  it('warns on 6.6–6.16, where the iommufd path opens the VF without its token', async () => {
    const world = await guestWorld(
      domainXml('vm2', [{ address: VF0, alias: 'ua-vf0', token: TOKEN, iommufd: true }]),
    );
    world.release = '6.8.0-45-generic';
    world.cdev = true;
    const f = one(await doctor(world, guest), 'guest-iommufd', VF0);
    assert.equal(f.status, 'warn');
    assert.equal(
      f.what,
      "VF 0000:3b:10.0 in guest vm2 uses QEMU's iommufd backend (<driver iommufd='yes'/>)",
    );
    assert.equal(
      f.fix,
      "virsh edit vm2: remove iommufd='yes' from the device's <driver/>, so that QEMU uses the VFIO group backend, which passes vf-token",
    );
  });

  it('fails from 6.17 on, where the kernel wants the token QEMU’s iommufd backend never sends', async () => {
    const world = await guestWorld(
      domainXml('vm2', [{ address: VF0, alias: 'ua-vf0', token: TOKEN, iommufd: true }]),
    );
    world.release = '6.18.5';
    world.cdev = true;
    const f = one(await doctor(world, guest), 'guest-iommufd', VF0);
    assert.equal(f.status, 'fail');
    assert.match(f.why, /the VF open is refused \(EACCES\)$/);
  });
});

describe('doctor: the guest’s QEMU', () => {
  it('checks the emulator the definition names', async () => {
    const world = await guestWorld(
      domainXml(
        'vm2',
        [{ address: VF0, alias: 'ua-vf0', token: TOKEN }],
        '/opt/qemu-7.2/bin/qemu-system-x86_64',
      ),
    );
    world.runner.onRun('qemu-system-x86_64', (argv) => ({
      stdout: argv[0]?.startsWith('/opt/') ? QEMU_7_2 : '',
    }));
    const f = one(await doctor(world, guest), 'qemu', '/opt/qemu-7.2/bin/qemu-system-x86_64');
    assert.deepEqual(
      [f.status, f.what],
      ['fail', 'QEMU 7.2.0 (/opt/qemu-7.2/bin/qemu-system-x86_64) has no vf-token property'],
    );
  });

  it('fails when the guest’s emulator is not installed', async () => {
    const world = await guestWorld(domainXml('vm2', [{ address: VF0, alias: 'ua-vf0', token: TOKEN }]));
    world.runner.forget('qemu-system-x86_64');
    const f = one(await doctor(world, guest), 'qemu', '/usr/bin/qemu-system-x86_64');
    assert.equal(f.status, 'fail');
    assert.match(
      f.what,
      /^cannot run \/usr\/bin\/qemu-system-x86_64 --version: command \/usr\/bin\/qemu-system-x86_64 not found/,
    );
  });
});
