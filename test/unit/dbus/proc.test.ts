import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProcStatus, unitFromCgroup } from '../../../src/broker/dbus/proc.js';

const STATUS = `Name:\tqemu-system-x86
Umask:\t0022
State:\tS (sleeping)
Tgid:\t4242
Pid:\t4242
Uid:\t107\t107\t107\t107
Gid:\t112\t113\t113\t113
FDSize:\t64
Groups:\t36 113 994
`;

describe('/proc/PID/status', () => {
  it('uids, then the effective gid and the supplementary groups without repeats', () => {
    assert.deepEqual(parseProcStatus(STATUS), { uids: [107, 107, 107, 107], gids: [113, 36, 994] });
  });

  it('an empty Groups: line means no supplementary groups', () => {
    assert.deepEqual(parseProcStatus('Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n'), {
      uids: [0, 0, 0, 0],
      gids: [0],
    });
  });

  it('missing or garbled lines give null, not a guess', () => {
    assert.equal(parseProcStatus('Uid:\t0\t0\t0\t0\nGroups:\t\n'), null);
    assert.equal(parseProcStatus('Uid:\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\n'), null);
    assert.equal(parseProcStatus('Uid:\t0\t0\t0\t0\nGid:\t0\tx\t0\t0\nGroups:\n'), null);
    assert.equal(parseProcStatus(''), null);
  });
});

describe('/proc/PID/cgroup → systemd unit', () => {
  const cases: [string, string | null][] = [
    ['0::/system.slice/libvirtd.service\n', 'libvirtd.service'],
    ['0::/system.slice/dpdk-app@port0.service\n', 'dpdk-app@port0.service'],
    ['0::/system.slice/foo.service/worker\n', 'foo.service'],
    [
      '0::/machine.slice/machine-qemu\\x2d1\\x2dvm.scope/libvirt/emulator\n',
      'machine-qemu\\x2d1\\x2dvm.scope',
    ],
    ['0::/user.slice/user-1000.slice/user@1000.service/app.slice/evil.service\n', 'user@1000.service'],
    ['0::/user.slice/user-1000.slice/session-3.scope\n', 'session-3.scope'],
    ['0::/init.scope\n', 'init.scope'],
    ['0::/system.slice/_cgroup.service\n', 'cgroup.service'],
    ['0::/\n', null],
    ['0::/docker/4f9a0c\n', null],
    ['0::/system.slice\n', null],
    ['', null],
    // Legacy/hybrid hierarchy: name=systemd is the one systemd keeps.
    ['12:memory:/other\n1:name=systemd:/system.slice/vfio-app.service\n0::/\n', 'vfio-app.service'],
  ];
  for (const [text, unit] of cases) {
    it(`${JSON.stringify(text.split('\n')[0])} → ${unit}`, () => assert.equal(unitFromCgroup(text), unit));
  }
});
