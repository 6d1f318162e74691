/** Whole reports: a healthy host, a broken one, and how they render as text and JSON. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DoctorReport } from '../../../src/doctor/doctor.js';
import { reportJson, renderText } from '../../../src/doctor/render.js';
import { parsePciAddress } from '../../../src/pci/address.js';
import { assertNoSecretsIn } from '../../support/log-capture.js';
import {
  CX5,
  PF,
  QEMU_7_2,
  SECRETS,
  TOKEN,
  UIO_PF,
  VF0,
  VF1,
  doctor,
  domainXml,
  healthyWorld,
  type World,
} from './world.js';

const UIO_VF = parsePciAddress('0000:5e:10.0');

/** [id, subject, status] of every finding, in report order. */
function outline(report: DoctorReport): [string, string | null, string][] {
  return report.findings.map((f) => [f.id, f.subject, f.status]);
}

/**
 * Everything issue 9 lists as broken at once: vfio-pci without enable_sriov, a PF on igb_uio, a VF
 * on igbvf, a guest without vf-token, QEMU 7.2, Linux 6.8 with /dev/vfio/devices, and the kernel's
 * record of the VF that refused to open.
 */
async function brokenWorld(): Promise<World> {
  const world = await healthyWorld();
  const sysfs = world.sysfs;
  await sysfs.unbind(UIO_PF);
  await sysfs.bind(UIO_PF, 'igb_uio');
  await sysfs.writeAttribute(UIO_PF, 'sriov_numvfs', '2');
  await sysfs.unbind(VF1);
  await sysfs.writeAttribute(VF1, 'driver_override', '');
  await sysfs.bind(VF1, 'igbvf');
  await assert.rejects(sysfs.vfio.openDevice(VF0));
  // An administrator turns enable_sriov off after the VFs were made (the parameter is writable).
  const state = sysfs.snapshot();
  state.modules['vfio_pci'] = { ...state.modules['vfio_pci'], enable_sriov: 'N' };
  sysfs.restore(state);
  world.runner.onRun('qemu-system-x86_64', { stdout: QEMU_7_2 });
  world.release = '6.8.0-45-generic';
  world.cdev = true;
  world.guests.set(
    'vm1',
    domainXml('vm1', [
      { address: VF0, alias: 'ua-vf0' },
      { address: VF1, alias: 'ua-vf1', token: TOKEN },
      { address: UIO_VF },
    ]),
  );
  return world;
}

describe('doctor: a healthy host', () => {
  it('passes every check for the configured PFs', async () => {
    const report = await doctor(await healthyWorld());
    assert.deepEqual(outline(report), [
      ['config', null, 'ok'],
      ['vfio-pci', null, 'ok'],
      ['kernel', null, 'ok'],
      ['qemu', 'qemu-system-x86_64', 'ok'],
      ['hook', null, 'ok'],
      ['broker', null, 'ok'],
      ['store', null, 'ok'],
      ['pf-configured', PF, 'ok'],
      ['pf-driver', PF, 'ok'],
      ['pf-token', PF, 'ok'],
      ['vf-driver', PF, 'ok'],
      ['kernel-log', PF, 'ok'],
      ['pf-configured', CX5, 'ok'],
      ['pf-driver', CX5, 'ok'],
      ['pf-token', CX5, 'ok'],
      ['vf-driver', CX5, 'skip'],
      ['kernel-log', CX5, 'ok'],
    ]);
    assert.equal(report.failed, false);
  });

  it('passes every check for a guest that presents its token', async () => {
    const report = await doctor(await healthyWorld(), { kind: 'guest', name: 'vm1' });
    assert.deepEqual(
      report.findings.filter((f) => f.status !== 'ok'),
      [],
    );
    assert.deepEqual(
      report.findings.map((f) => f.id).filter((id) => id.startsWith('guest')),
      ['guest-definition', 'guest-token', 'guest-iommufd'],
    );
  });
});

describe('doctor: a broken host', () => {
  it('finds each fault, and fails', async () => {
    const report = await doctor(await brokenWorld(), { kind: 'guest', name: 'vm1' });
    assert.deepEqual(
      outline(report).filter(([, , status]) => status !== 'ok'),
      [
        ['vfio-pci', null, 'fail'],
        ['kernel', null, 'warn'],
        ['qemu', '/usr/bin/qemu-system-x86_64', 'fail'],
        ['vf-driver', PF, 'warn'],
        ['kernel-log', PF, 'warn'],
        ['pf-configured', UIO_PF, 'skip'],
        ['pf-driver', UIO_PF, 'fail'],
        ['pf-token', UIO_PF, 'skip'],
        ['vf-driver', UIO_VF, 'skip'],
        ['guest-token', VF0, 'fail'],
      ],
    );
    assert.equal(report.failed, true);
  });

  it('renders one block per finding, without colour and without a token', async () => {
    const report = await doctor(await brokenWorld(), { kind: 'guest', name: 'vm1' });
    const text = renderText(report, false);
    assert.ok(text.includes('✓ broker: broker 0.1.0 serves host node-7: 2 PF(s), 1 lease(s)'));
    const at = text.indexOf(
      '✗ guest-token: guest vm1 presents no vf-token for VF 0000:3b:10.0 (alias ua-vf0)',
    );
    assert.ok(at >= 0);
    assert.match(text[at + 1] ?? '', /^ {4}why: QEMU would open the VF without a token/);
    assert.equal(text[at + 2], '    fix: vfbroker guest sync vm1');
    assert.equal(
      text.at(-1),
      '14 ok, 3 warning(s), 4 failed, 3 skipped: a VF would refuse to open (see ✗ above)',
    );
    assert.ok(!text.join('\n').includes('\x1b['));
    assertNoSecretsIn(text.join('\n'), SECRETS, 'the text report');
    assertNoSecretsIn(JSON.stringify(reportJson(report)), SECRETS, 'the JSON report');
  });
});

describe('doctor: rendering', () => {
  it('colours the marks only when asked', async () => {
    const world = await healthyWorld();
    world.broker.reachable = false;
    const text = renderText(await doctor(world), true);
    assert.ok(text.includes('\x1b[32m✓\x1b[0m config: /etc/vfbroker/broker.yaml configures 2 PFs'));
    assert.ok(text.some((l) => l.startsWith('\x1b[31m✗\x1b[0m broker: the broker is not reachable')));
    assert.ok(text.includes('\x1b[2m-\x1b[0m store: not checked: the broker is not reachable'));
  });

  it('prints the documented JSON document', async () => {
    const report = await doctor(await healthyWorld(), { kind: 'vf', address: VF0 });
    const json = JSON.parse(JSON.stringify(reportJson(report))) as Record<string, unknown>;
    assert.deepEqual(Object.keys(json), ['target', 'kernelRelease', 'failed', 'summary', 'findings']);
    assert.deepEqual(json['target'], { kind: 'vf', address: '0000:3b:10.0' });
    assert.equal(json['kernelRelease'], '6.1.0-27-amd64');
    assert.equal(json['failed'], false);
    assert.deepEqual(json['summary'], { ok: 13, warn: 0, fail: 0, skip: 0 });
    const findings = json['findings'] as Record<string, unknown>[];
    assert.deepEqual(findings[0], {
      id: 'config',
      status: 'ok',
      subject: null,
      what: '/etc/vfbroker/broker.yaml configures 2 PFs',
      why: '',
      fix: '',
    });
  });
});
