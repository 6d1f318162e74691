import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVfbError } from '../../../src/errors.js';
import { decodeXmlBytes, readDomainXml } from '../../../src/libvirt/domain-xml.js';
import { domainFixture, type DomainFixture } from './domain-fixtures.js';

interface Expected {
  readonly uuid: string;
  readonly name: string;
  readonly pciDevices: readonly {
    kind: string;
    address: string | null;
    alias: string | null;
    network?: string;
  }[];
  readonly vfTokens: Record<string, string>;
}

const EXPECTED: Record<DomainFixture, Expected> = {
  'no-hostdevs': {
    uuid: '6f1c3a52-1b0e-4d39-9a4e-2f0c9b7d8e11',
    name: 'web01',
    pciDevices: [{ kind: 'interface-network', address: null, alias: null, network: 'default' }],
    vfTokens: {},
  },
  'single-hostdev': {
    uuid: '0d2b8c7e-5a44-4f8e-bb2c-6f7e3b1d9a01',
    name: 'fec-du1',
    pciDevices: [{ kind: 'hostdev', address: '0000:3b:02.1', alias: 'ua-vf0' }],
    vfTokens: { 'ua-vf0': '8a6c2f0e-3f4b-4d8a-9c1e-5b7d2e4f6a80' },
  },
  'stale-token': {
    uuid: '9e4f7a10-2c3d-4b5e-8f60-71829304a5b6',
    name: 'fec-du2',
    pciDevices: [{ kind: 'hostdev', address: '0000:3b:02.2', alias: 'ua-vfbroker-0000-3b-02-2' }],
    vfTokens: { 'ua-vfbroker-0000-3b-02-2': '11111111-2222-4333-8444-555555555555' },
  },
  'interface-hostdev': {
    uuid: '3c9d2e61-7f80-4a1b-9c2d-e3f405162738',
    name: 'router1',
    pciDevices: [{ kind: 'interface-hostdev', address: '0000:af:02.3', alias: 'ua-net-uplink' }],
    vfTokens: {},
  },
  multifunction: {
    uuid: 'a7b8c9d0-e1f2-4a3b-8c4d-5e6f70819203',
    name: 'dpdk-lab',
    pciDevices: [
      '0001:5e:00.4',
      '0000:3b:02.1',
      '10000:01:00.7',
      '0000:3b:02.0',
      '0001:5e:00.3',
      '0000:d8:11.5',
      '0000:3b:02.7',
    ].map((address) => ({ kind: 'hostdev' as const, address: address, alias: null })),
    vfTokens: {},
  },
  'decimal-attributes': {
    uuid: '5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f',
    name: 'handmade',
    pciDevices: [
      { kind: 'hostdev', address: '0000:3b:02.1', alias: null },
      { kind: 'hostdev', address: '0000:3b:02.3', alias: null },
    ],
    vfTokens: {},
  },
  'network-pool-prepare': {
    uuid: 'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f',
    name: 'cnf-7',
    pciDevices: [
      { kind: 'interface-network', address: null, alias: null, network: 'default' },
      { kind: 'interface-network', address: null, alias: 'ua-pool0', network: 'sriov-pool' },
    ],
    vfTokens: { 'ua-pool0': '8a6c2f0e-3f4b-4d8a-9c1e-5b7d2e4f6a80' },
  },
  'network-pool-start': {
    uuid: 'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f',
    name: 'cnf-7',
    pciDevices: [{ kind: 'interface-hostdev', address: '0000:3b:02.3', alias: 'ua-pool0' }],
    vfTokens: { 'ua-pool0': '8a6c2f0e-3f4b-4d8a-9c1e-5b7d2e4f6a80' },
  },
  'network-pool-status': {
    uuid: 'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f',
    name: 'cnf-7',
    pciDevices: [
      { kind: 'interface-network', address: '0000:3b:02.3', alias: 'ua-pool0', network: 'sriov-pool' },
    ],
    vfTokens: { 'ua-pool0': '8a6c2f0e-3f4b-4d8a-9c1e-5b7d2e4f6a80' },
  },
  'user-qemu-override': {
    uuid: 'e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9',
    name: 'tuned',
    pciDevices: [{ kind: 'hostdev', address: '0000:3b:02.4', alias: null }],
    vfTokens: {},
  },
  'gpu-and-cx5': {
    uuid: 'f0e1d2c3-b4a5-4968-8778-695a4b3c2d1e',
    name: 'ml-train',
    pciDevices: [
      { kind: 'hostdev', address: '0000:65:00.0', alias: null },
      { kind: 'interface-hostdev', address: '0000:17:00.2', alias: null },
    ],
    vfTokens: {},
  },
};

function read(xml: string): Expected {
  const info = readDomainXml(xml);
  return { ...info, vfTokens: Object.fromEntries(info.vfTokens) };
}

function rejects(xml: string, message: RegExp): void {
  assert.throws(
    () => readDomainXml(xml),
    (err: unknown) =>
      isVfbError(err, 'INVALID_ARGUMENT') && message.test(err.message) && !err.message.includes('\n'),
  );
}

const wrap = (devices: string, extra = '') =>
  `<domain type='kvm'${extra}><name>g</name><uuid>6f1c3a52-1b0e-4d39-9a4e-2f0c9b7d8e11</uuid><devices>${devices}</devices></domain>`;

describe('readDomainXml on the fixtures', () => {
  for (const [name, expected] of Object.entries(EXPECTED) as [DomainFixture, Expected][]) {
    it(name, () => {
      assert.deepEqual(read(domainFixture(name)), expected);
    });
  }
});

describe('readDomainXml device shapes', () => {
  it('ignores hostdevs that are not PCI subsystem devices', () => {
    const xml = wrap(
      `<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>` +
        `<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address uuid='c2177883-f1bb-47f0-914d-32a22e3a8804'/></source></hostdev>` +
        `<hostdev mode='capabilities' type='storage'><source><block>/dev/sdf1</block></source></hostdev>` +
        `<interface type='bridge'><source bridge='br0'/></interface>`,
    );
    assert.deepEqual(read(xml).pciDevices, []);
  });

  it('accepts an explicit type on a hostdev source address, but no other type', () => {
    const typed = wrap(
      `<hostdev mode='subsystem' type='pci'><source><address type='pci' bus='0x3b' slot='0x02'/></source></hostdev>`,
    );
    assert.deepEqual(read(typed).pciDevices, [{ kind: 'hostdev', address: '0000:3b:02.0', alias: null }]);
    rejects(
      wrap(
        `<hostdev mode='subsystem' type='pci'><source><address type='usb' bus='1' device='2'/></source></hostdev>`,
      ),
      /<hostdev> #1 has a source address of type "usb", expected 'pci'/,
    );
  });

  it('requires type=pci on an interface hostdev source address', () => {
    rejects(
      wrap(
        `<interface type='hostdev'><source><address bus='0x3b' slot='0x02' function='0x1'/></source></interface>`,
      ),
      /<interface> #1 has a source address of type "\(none\)", expected 'pci'/,
    );
  });

  it('refuses a PCI hostdev without a source address', () => {
    rejects(
      wrap(`<hostdev mode='subsystem' type='pci' managed='yes'/>`),
      /<hostdev> #1 has no <source><address\/>/,
    );
  });

  it('names the device whose address is malformed', () => {
    rejects(
      wrap(
        `<hostdev mode='subsystem' type='pci'><source><address bus='0x3b' slot='0x20' function='0x1'/></source></hostdev>`,
      ),
      /domain XML: <hostdev> #1: invalid PCI address .*slot out of range/,
    );
    rejects(
      wrap(`<hostdev mode='subsystem' type='pci'><source><address bus='3b' slot='2'/></source></hostdev>`),
      /bus='3b' is not a number/,
    );
  });

  it('leaves out a network interface whose actual type is not hostdev', () => {
    const xml = wrap(
      `<interface type='network'><source network='default'/><actual type='direct'><source dev='eth0' mode='vepa'/></actual></interface>`,
    );
    assert.deepEqual(read(xml).pciDevices, []);
  });
});

describe('readDomainXml vf-tokens', () => {
  const QEMU = ` xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'`;
  const override = (body: string) => `<qemu:override>${body}</qemu:override>`;
  const device = (alias: string, props: string) =>
    `<qemu:device alias='${alias}'><qemu:frontend>${props}</qemu:frontend></qemu:device>`;
  const token = (value: string, type = 'string') =>
    `<qemu:property name='vf-token' type='${type}' value='${value}'/>`;
  const inDomain = (body: string, ns = QEMU) =>
    `<domain type='kvm'${ns}><name>g</name><uuid>6f1c3a52-1b0e-4d39-9a4e-2f0c9b7d8e11</uuid>${body}</domain>`;

  it('reads the property under any prefix bound to the qemu namespace', () => {
    const xml = `<domain xmlns:x='http://libvirt.org/schemas/domain/qemu/1.0'><name>g</name><uuid>6f1c3a52-1b0e-4d39-9a4e-2f0c9b7d8e11</uuid>
      <x:override><x:device alias='ua-a'><x:frontend><x:property name='vf-token' type='string' value='t-1'/></x:frontend></x:device></x:override></domain>`;
    assert.deepEqual(read(xml).vfTokens, { 'ua-a': 't-1' });
  });

  it('ignores look-alikes outside the qemu namespace and properties of another name or type', () => {
    const xml = `<domain xmlns:qemu='http://example.com/not-qemu'><name>g</name><uuid>6f1c3a52-1b0e-4d39-9a4e-2f0c9b7d8e11</uuid>${override(device('ua-a', token('t-1')))}</domain>`;
    assert.deepEqual(read(xml).vfTokens, {});
    const others = inDomain(
      override(
        device('ua-b', `<qemu:property name='x-vf-token' type='string' value='t-2'/>${token('t-3', 'bool')}`),
      ),
    );
    assert.deepEqual(read(others).vfTokens, {});
  });

  it('reads tokens of several devices and overrides', () => {
    const xml = inDomain(override(device('ua-a', token('t-1'))) + override(device('ua-b', token('t-2'))));
    assert.deepEqual(read(xml).vfTokens, { 'ua-a': 't-1', 'ua-b': 't-2' });
  });

  it('refuses two different tokens for one alias, without showing either', () => {
    const xml = inDomain(
      override(device('ua-a', token('first-secret-token')) + device('ua-a', token('other-secret-token'))),
    );
    assert.throws(
      () => readDomainXml(xml),
      (err: unknown) =>
        isVfbError(err, 'INVALID_ARGUMENT') &&
        /two different vf-token values for alias "ua-a"/.test(err.message) &&
        !err.message.includes('secret-token'),
    );
  });
});

describe('readDomainXml identity', () => {
  it('requires a well-formed uuid and a name', () => {
    rejects(`<domain><name>g</name></domain>`, /^domain XML has no <uuid>$/);
    rejects(`<domain><name>g</name><uuid>not-a-uuid</uuid></domain>`, /has a malformed <uuid> "not-a-uuid"/);
    rejects(`<domain><uuid>6f1c3a52-1b0e-4d39-9a4e-2f0c9b7d8e11</uuid></domain>`, /has no <name>/);
  });

  it('refuses a document whose root is not <domain>', () => {
    rejects(`<network><name>default</name></network>`, /has root element <network> instead of <domain>/);
  });

  it('lower-cases the uuid and trims names', () => {
    const info = readDomainXml(
      `<domain><name> g </name><uuid>6F1C3A52-1B0E-4D39-9A4E-2F0C9B7D8E11</uuid></domain>`,
    );
    assert.equal(info.uuid, '6f1c3a52-1b0e-4d39-9a4e-2f0c9b7d8e11');
    assert.equal(info.name, 'g');
  });
});

describe('decodeXmlBytes', () => {
  it('decodes UTF-8 and refuses invalid sequences', () => {
    assert.equal(decodeXmlBytes(Buffer.from('<a>é</a>'), 'input'), '<a>é</a>');
    assert.throws(
      () =>
        decodeXmlBytes(
          Buffer.from([0x3c, 0x61, 0x3e, 0xc3, 0x28, 0x3c, 0x2f, 0x61, 0x3e]),
          'the domain XML on stdin',
        ),
      (err: unknown) =>
        isVfbError(err, 'INVALID_ARGUMENT') && err.message === 'the domain XML on stdin is not valid UTF-8',
    );
  });
});
