/**
 * The files vfbroker installs for the bus and systemd, read as dbus-daemon and systemd read them.
 * The bus policy is also loaded by a real dbus-daemon in test/integration/dbus (as a test copy) and
 * test/root (unchanged); here its rules are evaluated for every member and both kinds of caller.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BUS_NAME, INTERFACE, METHODS, type MethodName } from '../../../src/dbus/protocol.js';
import { SHIPPED_POLICY } from '../../support/dbus-daemon.js';
import { repoPath } from '../../support/repo.js';

const UNIT = repoPath('etc/systemd/system/vfbroker.service');
const ACTIVATION = repoPath('etc/dbus-1/system-services/org.vfbroker.Broker1.service');

/** Methods any local user may call at the bus; the broker's policy decides from there. */
const OPEN_TO_ALL: readonly MethodName[] = ['ListPfs', 'Status', 'PfStatus', 'GetToken', 'SetNumVfs'];

interface Rule {
  readonly allow: boolean;
  readonly attrs: Readonly<Record<string, string>>;
}
interface Policy {
  readonly context?: string;
  readonly user?: string;
  readonly rules: Rule[];
}

const POLICY_ATTRS = new Set(['context', 'user']);
const RULE_ATTRS = new Set(['own', 'send_destination', 'send_interface', 'send_member', 'send_type']);

/** A strict reader for the subset of busconfig the file may use; anything else fails the test. */
function parseBusPolicy(xml: string): Policy[] {
  const body = xml
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/^<\?xml[^>]*\?>/, '')
    .replace(/<!DOCTYPE[^>]*>/, '')
    .trim();
  const policies: Policy[] = [];
  let current: Policy | null = null;
  let depth = 0;
  for (const m of body.matchAll(/<(\/?)([a-z]+)((?:\s+[a-z_]+="[^"]*")*)\s*(\/?)>|([^<\s][^<]*)/g)) {
    const [, close, name, attrText, selfClose, stray] = m;
    assert.equal(stray, undefined, `unexpected text ${JSON.stringify(stray)}`);
    const attrs: Record<string, string> = Object.fromEntries(
      [...(attrText ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((a): [string, string] => [
        a[1] ?? '',
        a[2] ?? '',
      ]),
    );
    if (name === 'busconfig') {
      depth += close ? -1 : 1;
    } else if (name === 'policy' && !close) {
      for (const k of Object.keys(attrs)) assert.ok(POLICY_ATTRS.has(k), `unknown policy attribute ${k}`);
      const policy: Policy = { ...attrs, rules: [] };
      policies.push(policy);
      current = policy;
    } else if (name === 'policy') {
      current = null;
    } else if ((name === 'allow' || name === 'deny') && selfClose === '/') {
      assert.ok(current, `<${name}> outside a <policy>`);
      for (const k of Object.keys(attrs)) assert.ok(RULE_ATTRS.has(k), `unknown rule attribute ${k}`);
      current.rules.push({ allow: name === 'allow', attrs });
    } else {
      assert.fail(`unexpected element <${close}${name}>`);
    }
  }
  assert.equal(depth, 0, 'balanced <busconfig>');
  return policies;
}

// The parts of system.conf's default context that decide for our name.
const SYSTEM_DEFAULTS: Rule[] = [
  { allow: false, attrs: { own: '*' } },
  { allow: false, attrs: { send_type: 'method_call' } },
];

/** dbus-daemon's order: default context, then the user's policies; the last matching rule wins. */
function decide(policies: Policy[], user: string, matches: (r: Rule) => boolean): boolean {
  const rules = [
    ...SYSTEM_DEFAULTS,
    ...policies.filter((p) => p.context === 'default').flatMap((p) => p.rules),
    ...policies.filter((p) => p.user === user).flatMap((p) => p.rules),
  ];
  let allowed = false;
  for (const r of rules) if (matches(r)) allowed = r.allow;
  return allowed;
}

function maySend(policies: Policy[], user: string, iface: string, member: string): boolean {
  const message: Record<string, string> = {
    send_destination: BUS_NAME,
    send_interface: iface,
    send_member: member,
    send_type: 'method_call',
  };
  return decide(policies, user, (r) => {
    const keys = Object.keys(r.attrs);
    return keys.length > 0 && keys.every((k) => k !== 'own' && r.attrs[k] === message[k]);
  });
}

function mayOwn(policies: Policy[], user: string): boolean {
  return decide(policies, user, (r) => r.attrs['own'] === '*' || r.attrs['own'] === BUS_NAME);
}

describe('bus policy (etc/dbus-1/system.d)', () => {
  it('only root may own the name', async () => {
    const policies = parseBusPolicy(await readFile(SHIPPED_POLICY, 'utf8'));
    assert.equal(mayOwn(policies, 'root'), true);
    assert.equal(mayOwn(policies, 'libvirt-qemu'), false);
  });

  it('root may call every method; others only ListPfs, Status, PfStatus, GetToken and SetNumVfs', async () => {
    const policies = parseBusPolicy(await readFile(SHIPPED_POLICY, 'utf8'));
    for (const member of Object.keys(METHODS) as MethodName[]) {
      assert.equal(maySend(policies, 'root', INTERFACE, member), true, `root → ${member}`);
      assert.equal(
        maySend(policies, 'nobody', INTERFACE, member),
        OPEN_TO_ALL.includes(member),
        `nobody → ${member}`,
      );
    }
  });

  it('anyone may introspect, ping and read properties, but not set them', async () => {
    const policies = parseBusPolicy(await readFile(SHIPPED_POLICY, 'utf8'));
    assert.equal(maySend(policies, 'nobody', 'org.freedesktop.DBus.Introspectable', 'Introspect'), true);
    assert.equal(maySend(policies, 'nobody', 'org.freedesktop.DBus.Peer', 'Ping'), true);
    assert.equal(maySend(policies, 'nobody', 'org.freedesktop.DBus.Properties', 'GetAll'), true);
    assert.equal(maySend(policies, 'nobody', 'org.freedesktop.DBus.Properties', 'Get'), true);
    assert.equal(maySend(policies, 'nobody', 'org.freedesktop.DBus.Properties', 'Set'), false);
    assert.equal(maySend(policies, 'nobody', 'org.example.Other', 'Anything'), false);
  });

  it('names only members the protocol has', async () => {
    const policies = parseBusPolicy(await readFile(SHIPPED_POLICY, 'utf8'));
    for (const rule of policies.flatMap((p) => p.rules)) {
      if (rule.attrs['send_interface'] === INTERFACE) {
        assert.ok(Object.hasOwn(METHODS, rule.attrs['send_member'] ?? ''), JSON.stringify(rule.attrs));
      }
    }
  });

  it('the reader itself refuses what it does not know', () => {
    assert.throws(() =>
      parseBusPolicy('<busconfig><policy user="root"><allow send_membr="X"/></policy></busconfig>'),
    );
    assert.throws(() =>
      parseBusPolicy('<busconfig><policy user="root"><allow own="X"></allow></policy></busconfig>'),
    );
    assert.throws(() => parseBusPolicy('<busconfig><limit name="x">1</limit></busconfig>'));
  });
});

/** `Key=Value` lines per section; repeated keys keep every value in order. */
function parseIni(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      sections.set(header[1] as string, section);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(section && eq > 0, `not a Key=Value line in a section: ${line}`);
    const key = line.slice(0, eq);
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

describe('D-Bus activation file (etc/dbus-1/system-services)', () => {
  it('names the bus name and hands activation to the systemd unit', async () => {
    const ini = parseIni(await readFile(ACTIVATION, 'utf8'));
    const s = ini.get('D-BUS Service');
    assert.ok(s);
    assert.deepEqual(Object.fromEntries([...s].map(([k, v]) => [k, v.join(' ')])), {
      Name: BUS_NAME,
      Exec: '/bin/false',
      User: 'root',
      SystemdService: 'vfbroker.service',
    });
  });
});

describe('systemd unit (etc/systemd/system/vfbroker.service)', () => {
  it('is a D-Bus service for our name, running `vfbroker serve`', async () => {
    const service = parseIni(await readFile(UNIT, 'utf8')).get('Service');
    assert.ok(service);
    assert.deepEqual(service.get('Type'), ['dbus']);
    assert.deepEqual(service.get('BusName'), [BUS_NAME]);
    assert.deepEqual(service.get('ExecStart'), ['/usr/bin/vfbroker serve']);
  });

  it('is hardened: read-only system, private state and runtime dirs, no capabilities', async () => {
    const service = parseIni(await readFile(UNIT, 'utf8')).get('Service');
    assert.ok(service);
    const one = (key: string) => {
      const v = service.get(key);
      assert.equal(v?.length, 1, `${key} set exactly once`);
      return v?.[0];
    };
    const expected: Record<string, string> = {
      ProtectSystem: 'strict',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectHome: 'yes',
      PrivateTmp: 'no',
      KillMode: 'process',
      ExecReload: '/bin/kill -HUP $MAINPID',
      NoNewPrivileges: 'yes',
      CapabilityBoundingSet: '',
      AmbientCapabilities: '',
      StateDirectory: 'vfbroker',
      StateDirectoryMode: '0700',
      RuntimeDirectory: 'vfbroker',
      RuntimeDirectoryMode: '0700',
      UMask: '0077',
      RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6',
      SystemCallArchitectures: 'native',
      DevicePolicy: 'closed',
    };
    for (const [key, value] of Object.entries(expected)) assert.equal(one(key), value, key);
    // The sysfs files the broker writes, and nothing else of /sys.
    // The sysfs files the broker writes and pf_bb_config's log, nothing else.
    assert.deepEqual(service.get('ReadWritePaths'), [
      '/sys/bus/pci /sys/devices -/sys/module/vfio_pci/parameters',
      '-/var/log',
    ]);
    assert.deepEqual(service.get('DeviceAllow'), ['/dev/vfio/vfio rw', 'char-vfio rw']);
  });

  it('passes `systemd-analyze verify` without a warning', async (t) => {
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
      t.skip('systemd-analyze is not installed; only this check is skipped');
      return;
    }
    // verify insists that ExecStart exists; /usr/bin/vfbroker is not installed on a test machine,
    // so a copy points it at /bin/true and keeps every other line.
    const dir = await mkdtemp(join(tmpdir(), 'vfbroker-unit-'));
    try {
      const unit = (await readFile(UNIT, 'utf8')).replace(
        'ExecStart=/usr/bin/vfbroker ',
        'ExecStart=/bin/true ',
      );
      const copy = join(dir, 'vfbroker.service');
      await writeFile(copy, unit);
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', copy], { encoding: 'utf8', cwd: dir });
      // Lines about other units are the host's business: our unit orders itself before
      // libvirtd.service, so verify also loads that one, and a host's copy may warn on its own.
      const ours = r.stderr
        .split('\n')
        .filter((l) => l.trim() !== '' && !/^\/(lib|usr\/lib|etc)\/systemd\/system\/(?!vfbroker)/.test(l));
      assert.deepEqual(ours, [], 'no warnings about vfbroker.service');
      assert.equal(r.status, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
