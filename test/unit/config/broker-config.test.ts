import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { VfbError } from '../../../src/errors.js';
import { loadBrokerConfig, parseBrokerConfig, type BrokerConfig } from '../../../src/config/broker-config.js';
import { FIXTURES, REPO_ROOT } from './fixtures.js';

const FILE = '/etc/vfbroker/broker.yaml';
const FILE_STORE = 'store: { type: file }\n';

const parse = (text: string, hostname = 'node-7'): BrokerConfig =>
  parseBrokerConfig(text, FILE, { hostname });

function errorOf(text: string, hostname = 'node-7'): string {
  try {
    parse(text, hostname);
  } catch (err) {
    assert.ok(err instanceof VfbError);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.ok(!err.message.includes('\n'));
    return err.message;
  }
  assert.fail('expected CONFIG_INVALID');
}

describe('broker.yaml defaults', () => {
  it('fills every default around a minimal file', () => {
    const config = parse(FILE_STORE);
    assert.deepEqual(config, {
      file: FILE,
      hostId: 'node-7',
      store: { type: 'file', directory: '/var/lib/vfbroker/tokens' },
      sysfs: { type: 'root', root: '/sys' },
      driverctl: { directory: '/etc/driverctl.d' },
      libvirt: { runDirectory: '/run/libvirt/qemu' },
      stateDirectory: '/var/lib/vfbroker',
      runtimeDirectory: '/run/vfbroker',
      plugins: { paths: [] },
      pfs: [],
      rotation: { maxAgeMs: null, drainTimeoutMs: 600_000 },
      hook: { brokerTimeoutMs: 5000 },
      health: { checkIntervalMs: 15000 },
      dbus: { busAddress: null },
      log: { level: 'info' },
    });
  });

  it('takes the host id from the hostname, lower-cased', () => {
    assert.equal(parse(FILE_STORE, 'Compute-07.Example.NET').hostId, 'compute-07.example.net');
  });

  it('says so when the hostname cannot be a host id', () => {
    assert.equal(
      errorOf(`\n${FILE_STORE}`, 'under_score'),
      `${FILE}:2:1: hostId is not set and the hostname "under_score" cannot serve as one; set hostId to lower-case letters, digits, "." and "-"`,
    );
  });

  it('keeps the file store under the state directory unless told otherwise', () => {
    assert.deepEqual(parse(`${FILE_STORE}stateDirectory: /srv/vfb\n`).store, {
      type: 'file',
      directory: '/srv/vfb/tokens',
    });
    assert.deepEqual(parse('store: { type: file, directory: /srv/tokens }\n').store, {
      type: 'file',
      directory: '/srv/tokens',
    });
  });

  it('is deep-frozen', () => {
    const config = parse(
      `${FILE_STORE}pfs: [{ address: 0000:3b:00.0, vfs: 2, options: { a: { b: [1] } } }]\n`,
    );
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.store));
    assert.ok(Object.isFrozen(config.pfs));
    const pf = config.pfs[0];
    assert.ok(pf);
    assert.ok(Object.isFrozen(pf.options));
    assert.ok(Object.isFrozen((pf.options['a'] as { b: number[] }).b));
    assert.throws(() => {
      (config as { hostId: string }).hostId = 'x';
    }, TypeError);
  });
});

describe('broker.yaml keys', () => {
  const vault = (extra = '', auth = 'tokenFile: /etc/vfbroker/vault-token') =>
    `store:\n  type: vault\n  address: https://vault.example.net:8200\n  auth: { ${auth} }\n${extra}`;

  it('reads a Vault store with a token file', () => {
    assert.deepEqual(parse(vault()).store, {
      type: 'vault',
      address: 'https://vault.example.net:8200',
      caFile: null,
      auth: { method: 'token', tokenFile: '/etc/vfbroker/vault-token' },
      mount: 'secret',
      prefix: 'vfbroker',
      requestTimeoutMs: 5000,
    });
  });

  it('reads a Vault store with AppRole and every option', () => {
    const text =
      'store:\n  type: vault\n  address: https://vault.example.net:8200/\n  caFile: ca.pem\n' +
      '  auth:\n    approle: { roleIdFile: role-id, secretIdFile: /run/secrets/secret-id, mount: auth/approle-vfb }\n' +
      '  mount: kv/infra\n  prefix: sriov/vfbroker\n  requestTimeoutMs: 250\n';
    assert.deepEqual(parse(text).store, {
      type: 'vault',
      address: 'https://vault.example.net:8200',
      caFile: '/etc/vfbroker/ca.pem',
      auth: {
        method: 'approle',
        roleIdFile: '/etc/vfbroker/role-id',
        secretIdFile: '/run/secrets/secret-id',
        mount: 'auth/approle-vfb',
      },
      mount: 'kv/infra',
      prefix: 'sriov/vfbroker',
      requestTimeoutMs: 250,
    });
    const approle = parse(vault('', 'approle: { roleIdFile: /a, secretIdFile: /b }')).store;
    assert.equal(
      approle.type === 'vault' && approle.auth.method === 'approle' && approle.auth.mount,
      'approle',
    );
  });

  it('allows plain http to loopback only', () => {
    for (const address of ['http://127.0.0.1:8200', 'http://localhost:8200', 'http://[::1]:8200']) {
      const store = parse(vault().replace('https://vault.example.net:8200', address)).store;
      assert.equal(store.type === 'vault' && store.address, address);
    }
    assert.equal(
      errorOf(vault().replace('https://vault.example.net:8200', 'http://vault:8200')),
      `${FILE}:3:3: store.address: expected an https:// URL such as "https://vault.example.net:8200" (http:// only to a loopback address), found "http://vault:8200"`,
    );
  });

  it('refuses credentials, paths and other schemes in the Vault address', () => {
    const secret = 's.2OaPeZxZmCqJ6PKzZqkUmF4n';
    const withCreds = errorOf(vault().replace('https://', `https://root:${secret}@`));
    assert.match(withCreds, /store\.address: expected an https:\/\/ URL .* without a user name or password$/);
    assert.ok(!withCreds.includes(secret));
    assert.match(errorOf(vault().replace(':8200', ':8200/v1')), /without a path, query or fragment$/);
    assert.match(errorOf(vault().replace('https://vault.example.net:8200', 'ftp://v')), /found "ftp:\/\/v"$/);
    assert.match(
      errorOf(vault().replace('https://vault.example.net:8200', 'not a url')),
      /found "not a url"$/,
    );
  });

  it('wants exactly one auth method', () => {
    assert.equal(
      errorOf(vault('', '')),
      `${FILE}:4:3: store.auth: expected exactly one of "tokenFile" or "approle", found neither`,
    );
    assert.equal(
      errorOf(vault('', 'tokenFile: /t, approle: { roleIdFile: /a, secretIdFile: /b }')),
      `${FILE}:4:3: store.auth: expected exactly one of "tokenFile" or "approle", found "tokenFile" and "approle"`,
    );
    assert.equal(
      errorOf(vault('', 'approle: { roleIdFile: /a }')),
      `${FILE}:4:11: store.auth.approle.secretIdFile: missing (expected a path)`,
    );
  });

  it('checks the store type', () => {
    assert.equal(
      errorOf('store: { type: vaul }\n'),
      `${FILE}:1:10: store.type: expected "vault" or "file", found "vaul"`,
    );
    assert.equal(errorOf('store: {}\n'), `${FILE}:1:1: store.type: missing (expected "vault" or "file")`);
    assert.equal(
      errorOf('log: {}\n'),
      `${FILE}:1:1: store: missing (expected a mapping with type "vault" or "file")`,
    );
    assert.equal(
      errorOf('store: { type: file, address: https://v }\n'),
      `${FILE}:1:22: store: unknown key "address" (expected one of "type", "directory")`,
    );
  });

  it('checks Vault paths and the timeout', () => {
    assert.equal(
      errorOf(vault('  mount: /secret\n')),
      `${FILE}:5:3: store.mount: expected a Vault path like "secret", found "/secret"`,
    );
    assert.equal(
      errorOf(vault('  prefix: a/../b\n')),
      `${FILE}:5:3: store.prefix: expected a Vault path like "vfbroker", found "a/../b"`,
    );
    assert.equal(
      errorOf(vault('  requestTimeoutMs: 0\n')),
      `${FILE}:5:3: store.requestTimeoutMs: expected an integer from 100 to 120000, found 0`,
    );
  });

  it('reads a host id', () => {
    assert.equal(parse(`hostId: rack4-node-07.dc1\n${FILE_STORE}`).hostId, 'rack4-node-07.dc1');
    assert.equal(
      errorOf(`hostId: Node_7\n${FILE_STORE}`),
      `${FILE}:1:1: hostId: expected a host id of lower-case letters, digits, "." and "-", like "node-7", found "Node_7"`,
    );
    assert.match(
      errorOf(`hostId: ${'a'.repeat(64)}\n${FILE_STORE}`),
      /hostId: expected a host id .*, found a string of 64 characters$/,
    );
  });

  it('reads the sysfs root or a simulator', () => {
    assert.deepEqual(parse(`${FILE_STORE}sysfs: { root: /tmp/fake-sys }\n`).sysfs, {
      type: 'root',
      root: '/tmp/fake-sys',
    });
    assert.deepEqual(
      parse(`${FILE_STORE}sysfs: { simulator: { fixture: hosts/a.yaml, stateFile: /run/sim.json } }\n`).sysfs,
      {
        type: 'simulator',
        fixture: '/etc/vfbroker/hosts/a.yaml',
        stateFile: '/run/sim.json',
      },
    );
    assert.equal(
      errorOf(`${FILE_STORE}sysfs: { root: /sys, simulator: { fixture: a, stateFile: b } }\n`),
      `${FILE}:2:1: sysfs: expected exactly one of "root" or "simulator", found "root" and "simulator"`,
    );
    assert.equal(
      errorOf(`${FILE_STORE}sysfs: { simulator: { fixture: a } }\n`),
      `${FILE}:2:10: sysfs.simulator.stateFile: missing (expected a path)`,
    );
  });

  it('reads driverctl’s directory, and reads none for a sysfs other than /sys unless told', () => {
    assert.deepEqual(parse(`${FILE_STORE}driverctl: { directory: driverctl.d }\n`).driverctl, {
      directory: '/etc/vfbroker/driverctl.d',
    });
    assert.deepEqual(parse(`${FILE_STORE}sysfs: { root: /tmp/fake-sys }\n`).driverctl, { directory: null });
    assert.deepEqual(
      parse(`${FILE_STORE}sysfs: { simulator: { fixture: a.yaml, stateFile: s.json } }\n`).driverctl,
      { directory: null },
    );
    assert.deepEqual(
      parse(`${FILE_STORE}sysfs: { root: /tmp/fake-sys }\ndriverctl: { directory: /tmp/dc }\n`).driverctl,
      { directory: '/tmp/dc' },
    );
    assert.equal(
      errorOf(`${FILE_STORE}driverctl: { directry: /tmp/dc }\n`),
      `${FILE}:2:14: driverctl: unknown key "directry" (did you mean "directory"?)`,
    );
  });

  it('reads libvirt’s run directory, relative to the file', () => {
    assert.deepEqual(parse(`${FILE_STORE}libvirt: { runDirectory: /var/run/libvirt/qemu }\n`).libvirt, {
      runDirectory: '/var/run/libvirt/qemu',
    });
    assert.deepEqual(parse(`${FILE_STORE}libvirt: { runDirectory: run/qemu }\n`).libvirt, {
      runDirectory: '/etc/vfbroker/run/qemu',
    });
    assert.equal(
      errorOf(`${FILE_STORE}libvirt:\n  runDirectory: [a]\n`),
      `${FILE}:3:3: libvirt.runDirectory: expected a path, found a list`,
    );
    assert.equal(
      errorOf(`${FILE_STORE}libvirt: { rundirectry: /run/libvirt/qemu }\n`),
      `${FILE}:2:12: libvirt: unknown key "rundirectry" (did you mean "runDirectory"?)`,
    );
  });

  it('reads VFs opted in to a kernel driver with vfDrivers, each with its position', () => {
    const config = parse(
      `${FILE_STORE}pfs:\n  - address: 0000:04:00.0\n    vfs: 7\n    vfDrivers:\n      6: igbvf\n      3: igbvf\n`,
    );
    assert.deepEqual(config.pfs[0]?.vfDrivers, [
      { index: 3, driver: 'igbvf', location: { file: FILE, line: 7, column: 7 } },
      { index: 6, driver: 'igbvf', location: { file: FILE, line: 6, column: 7 } },
    ]);
  });

  it('reads directories and plugin paths, relative to the file', () => {
    const config = parse(
      `${FILE_STORE}stateDirectory: state\nruntimeDirectory: /run/x/../y\nplugins: { paths: [/opt/p.js, local/p.js] }\n`,
    );
    assert.equal(config.stateDirectory, '/etc/vfbroker/state');
    assert.equal(config.runtimeDirectory, '/run/y');
    assert.deepEqual(config.plugins, { paths: ['/opt/p.js', '/etc/vfbroker/local/p.js'] });
    assert.equal(
      errorOf(`${FILE_STORE}stateDirectory: ""\n`),
      `${FILE}:2:1: stateDirectory: expected a path, found an empty string`,
    );
    assert.equal(
      errorOf(`${FILE_STORE}plugins: { paths: /opt/p.js }\n`),
      `${FILE}:2:12: plugins.paths: expected a list, found "/opt/p.js"`,
    );
  });

  it('reads PFs with their options and rotation', () => {
    const text =
      `${FILE_STORE}rotation: { maxAge: 30d, drainTimeout: 15m }\npfs:\n` +
      '  - address: 0000:3b:00.0\n    plugin: igb\n    vfs: 7\n' +
      '  - address: 0000:5e:00.0\n    plugin: intel-fec\n    vfs: 16\n    options: { configFile: acc100.cfg, queues: [4, 4] }\n    rotation: { drainTimeout: 2h }\n' +
      '  - address: 10000:af:00.1\n    vfs: 0\n    rotation: { maxAge: 1h30m }\n';
    const config = parse(text);
    assert.deepEqual(config.rotation, { maxAgeMs: 2_592_000_000, drainTimeoutMs: 900_000 });
    assert.deepEqual(config.pfs, [
      {
        address: '0000:3b:00.0',
        plugin: 'igb',
        vfs: 7,
        options: {},
        rotation: { maxAgeMs: 2_592_000_000, drainTimeoutMs: 900_000 },
        vfDrivers: [],
        location: { file: FILE, line: 4, column: 5 },
      },
      {
        address: '0000:5e:00.0',
        plugin: 'intel-fec',
        vfs: 16,
        options: { configFile: 'acc100.cfg', queues: [4, 4] },
        rotation: { maxAgeMs: 2_592_000_000, drainTimeoutMs: 7_200_000 },
        vfDrivers: [],
        location: { file: FILE, line: 7, column: 5 },
      },
      {
        address: '10000:af:00.1',
        plugin: null,
        vfs: 0,
        options: {},
        rotation: { maxAgeMs: 5_400_000, drainTimeoutMs: 900_000 },
        vfDrivers: [],
        location: { file: FILE, line: 12, column: 5 },
      },
    ]);
  });

  it('reads the hook, D-Bus and log settings', () => {
    const config = parse(
      `${FILE_STORE}hook: { brokerTimeoutMs: 2000 }\ndbus: { busAddress: "unix:path=/tmp/bus;tcp:host=127.0.0.1,port=1" }\nlog: { level: debug }\n`,
    );
    assert.deepEqual(config.hook, { brokerTimeoutMs: 2000 });
    assert.deepEqual(config.dbus, { busAddress: 'unix:path=/tmp/bus;tcp:host=127.0.0.1,port=1' });
    assert.deepEqual(config.log, { level: 'debug' });
    assert.equal(
      errorOf(`${FILE_STORE}dbus: { busAddress: /run/dbus/system_bus_socket }\n`),
      `${FILE}:2:9: dbus.busAddress: expected a D-Bus address like "unix:path=/run/dbus/system_bus_socket", found a string of 27 characters`,
    );
    assert.equal(
      errorOf(`${FILE_STORE}log: { level: verbose }\n`),
      `${FILE}:2:8: log.level: expected one of "trace", "debug", "info", "warn", "error", "fatal", "silent", found "verbose"`,
    );
    assert.equal(
      errorOf(`${FILE_STORE}hook: { brokerTimeoutMs: 5s }\n`),
      `${FILE}:2:9: hook.brokerTimeoutMs: expected an integer from 100 to 120000, found "5s"`,
    );
  });
});

describe('broker.yaml errors', () => {
  const pf = (fields: string) => `${FILE_STORE}pfs:\n  - ${fields}\n`;

  it('reports wrong types with the position, the path, what was expected and what was found', () => {
    assert.equal(
      errorOf(
        `${FILE_STORE}pfs:\n  - address: 0000:3b:00.0\n    vfs: 7\n  - address: 0000:5e:00.0\n    vfs: eight\n`,
      ),
      `${FILE}:6:5: pfs[1].vfs: expected an integer from 0 to 256, found "eight"`,
    );
    assert.equal(
      errorOf(pf('address: 0000:3b:00.0\n    vfs: 7.5')),
      `${FILE}:4:5: pfs[0].vfs: expected an integer from 0 to 256, found 7.5`,
    );
    assert.equal(
      errorOf(pf('address: 0000:3b:00.0\n    vfs: 257')),
      `${FILE}:4:5: pfs[0].vfs: expected an integer from 0 to 256, found 257`,
    );
    assert.equal(
      errorOf(pf('address: 0000:3b:00.0\n    vfs:')),
      `${FILE}:4:5: pfs[0].vfs: expected an integer from 0 to 256, found an empty value`,
    );
    assert.equal(
      errorOf(pf('address: 0000:3b:00.0')),
      `${FILE}:3:5: pfs[0].vfs: missing (expected an integer from 0 to 256)`,
    );
    assert.equal(
      errorOf(`${FILE_STORE}pfs: { address: 0000:3b:00.0 }\n`),
      `${FILE}:2:1: pfs: expected a list, found a mapping`,
    );
    assert.equal(
      errorOf(pf('address: 0000:3b:00.0\n    vfs: 1\n    options: [a]')),
      `${FILE}:5:5: pfs[0].options: expected a mapping, found a list`,
    );
    assert.equal(
      errorOf(pf('address: 0000:3b:00.0\n    vfs: 1\n    plugin: Intel FEC')),
      `${FILE}:5:5: pfs[0].plugin: expected a plugin name like "intel-fec", found "Intel FEC"`,
    );
  });

  it('names unknown keys and suggests the intended one', () => {
    assert.equal(
      errorOf(pf('address: 0000:3b:00.0\n    vfs: 1\n    plguin: igb')),
      `${FILE}:5:5: pfs[0]: unknown key "plguin" (did you mean "plugin"?)`,
    );
    assert.equal(
      errorOf(`${FILE_STORE}state_directory: /x\n`),
      `${FILE}:2:1: unknown key "state_directory" (did you mean "stateDirectory"?)`,
    );
    assert.equal(
      errorOf(`${FILE_STORE}rotation: { maxage: 1d }\n`),
      `${FILE}:2:13: rotation: unknown key "maxage" (did you mean "maxAge"?)`,
    );
    assert.match(
      errorOf(`${FILE_STORE}colour: blue\n`),
      /^\/etc\/vfbroker\/broker\.yaml:2:1: unknown key "colour" \(expected one of "hostId", "store", /,
    );
  });

  it('rejects vfDrivers for VFs the PF will not have, and driver names sysfs cannot have', () => {
    const vfDrivers = (entry: string) =>
      errorOf(pf(`address: 0000:04:00.0\n    vfs: 7\n    vfDrivers: ${entry}`));
    assert.equal(
      vfDrivers('{ 7: igbvf }'),
      `${FILE}:5:18: pfs[0].vfDrivers["7"]: the PF has no VF 7: its VF indexes are 0 to 6, as vfs is 7`,
    );
    assert.equal(
      vfDrivers('{ 0x3: igbvf }'),
      `${FILE}:5:18: pfs[0].vfDrivers["0x3"]: expected a VF index (0 to 6, as vfs is 7), found "0x3"`,
    );
    assert.equal(
      vfDrivers('{ 03: igbvf }'),
      `${FILE}:5:18: pfs[0].vfDrivers["03"]: expected a VF index (0 to 6, as vfs is 7), found "03"`,
    );
    assert.equal(
      vfDrivers('{ 3: ../igbvf }'),
      `${FILE}:5:18: pfs[0].vfDrivers["3"]: expected a driver name as sysfs shows it, like "igbvf", found "../igbvf"`,
    );
    assert.equal(
      vfDrivers('{ 3: igb vf }'),
      `${FILE}:5:18: pfs[0].vfDrivers["3"]: expected a driver name as sysfs shows it, like "igbvf", found "igb vf"`,
    );
    assert.equal(
      vfDrivers('{ 3: 7 }'),
      `${FILE}:5:18: pfs[0].vfDrivers["3"]: expected a driver name as sysfs shows it, like "igbvf", found 7`,
    );
    assert.equal(
      vfDrivers('[igbvf]'),
      `${FILE}:5:5: pfs[0].vfDrivers: expected a mapping of VF index to driver, like { 3: igbvf }, found a list`,
    );
    assert.equal(
      errorOf(pf('address: 0000:04:00.0\n    vfs: 0\n    vfDrivers: { 0: igbvf }')),
      `${FILE}:5:18: pfs[0].vfDrivers["0"]: the PF has no VF 0: its VF indexes are none: vfs is 0`,
    );
  });

  it('rejects PCI addresses that are not in the kernel form', () => {
    assert.equal(
      errorOf(pf('address: 0000:3B:00.0\n    vfs: 1')),
      `${FILE}:3:5: pfs[0].address: expected a PCI address like 0000:3b:00.0, found "0000:3B:00.0" (did you mean 0000:3b:00.0?)`,
    );
    assert.equal(
      errorOf(pf('address: 3b:00.0\n    vfs: 1')),
      `${FILE}:3:5: pfs[0].address: expected a PCI address like 0000:3b:00.0, found "3b:00.0" (did you mean 0000:3b:00.0?)`,
    );
    assert.equal(
      errorOf(pf('address: ../../etc\n    vfs: 1')),
      `${FILE}:3:5: pfs[0].address: expected a PCI address like 0000:3b:00.0, found "../../etc"`,
    );
    assert.equal(
      errorOf(pf('address: 0000:3b:20.0\n    vfs: 1')),
      `${FILE}:3:5: pfs[0].address: expected a PCI address like 0000:3b:00.0, found "0000:3b:20.0"`,
    );
    assert.equal(
      errorOf(pf('address: 3b00\n    vfs: 1')),
      `${FILE}:3:5: pfs[0].address: expected a PCI address like 0000:3b:00.0, found "3b00"`,
    );
  });

  it('rejects bad durations', () => {
    assert.equal(
      errorOf(`${FILE_STORE}rotation: { maxAge: 30 }\n`),
      `${FILE}:2:13: rotation.maxAge: expected a duration from 1m to 3650d, like "12h" or "1h30m", found 30`,
    );
    assert.equal(
      errorOf(`${FILE_STORE}rotation: { maxAge: 30s }\n`),
      `${FILE}:2:13: rotation.maxAge: expected a duration from 1m to 3650d, like "12h" or "1h30m", found "30s"`,
    );
    assert.equal(
      errorOf(pf('address: 0000:3b:00.0\n    vfs: 1\n    rotation: { drainTimeout: 1.5h }')),
      `${FILE}:5:17: pfs[0].rotation.drainTimeout: expected a duration from 1s to 30d, like "12h" or "1h30m", found "1.5h"`,
    );
  });

  it('names both lines of a PF listed twice', () => {
    const text = `${FILE_STORE}pfs:\n  - address: 0000:3b:00.0\n    vfs: 1\n  - address: 0000:5e:00.0\n    vfs: 1\n  - vfs: 2\n    address: 0000:3b:00.0\n`;
    assert.equal(
      errorOf(text),
      `${FILE}:8:5: pfs[2].address: PF 0000:3b:00.0 is listed twice, here and at line 3`,
    );
  });

  it('reports malformed YAML with its position', () => {
    assert.equal(
      errorOf(`${FILE_STORE}pfs: [\n`),
      `${FILE}:3:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]`,
    );
    assert.equal(errorOf(''), `${FILE}:1:1: the file is empty; expected a mapping of settings`);
    assert.equal(errorOf('- store\n'), `${FILE}:1:1: expected a mapping at the top level, found a list`);
  });
});

describe('loadBrokerConfig', () => {
  it('validates the shipped example', async () => {
    const path = join(REPO_ROOT, 'etc/vfbroker/broker.yaml');
    const config = await loadBrokerConfig(path);
    assert.equal(config.hostId, 'compute-07');
    assert.equal(config.store.type, 'vault');
    assert.ok(config.store.type === 'vault' && config.store.auth.method === 'approle');
    assert.deepEqual(
      config.pfs.map((p) => [p.address, p.plugin, p.vfs]),
      [
        ['0000:3b:00.0', 'igb', 7],
        ['0000:5e:00.0', 'intel-fec', 16],
        ['0000:af:00.0', 'mlx5', 8],
      ],
    );
    assert.deepEqual(config.pfs[1]?.rotation, { maxAgeMs: 2_592_000_000, drainTimeoutMs: 7_200_000 });
  });

  it('resolves relative paths against the file, for a simulated host', async () => {
    const path = join(FIXTURES, 'broker-relative.yaml');
    const config = await loadBrokerConfig(path);
    assert.deepEqual(config.store, { type: 'file', directory: join(FIXTURES, 'state/tokens') });
    assert.deepEqual(config.sysfs, {
      type: 'simulator',
      fixture: join(FIXTURES, 'hosts/two-pfs.yaml'),
      stateFile: join(FIXTURES, 'state/sim.json'),
    });
    assert.equal(config.stateDirectory, join(FIXTURES, 'state'));
    assert.equal(config.runtimeDirectory, join(FIXTURES, 'run'));
    assert.deepEqual(config.plugins.paths, [join(FIXTURES, 'plugins/extra.js')]);
    assert.equal(config.pfs[0]?.location.file, path);
  });
});
