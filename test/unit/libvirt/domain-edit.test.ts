import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVfbError, type ErrorCode } from '../../../src/errors.js';
import { attachVf, detachVf, syncVfToken, vfbrokerAlias } from '../../../src/libvirt/domain-edit.js';
import { readDomainXml } from '../../../src/libvirt/domain-xml.js';
import { parsePciAddress } from '../../../src/pci/address.js';
import { assertNoSecretsIn } from '../../support/log-capture.js';
import { DOMAIN_FIXTURES, domainFixture } from './domain-fixtures.js';

const NEW_VF = parsePciAddress('0000:3b:03.0');
const TOKEN = '0f1e2d3c-4b5a-4968-8776-655443322110';
const OTHER_TOKEN = '99887766-5544-4332-8110-ffeeddccbbaa';
const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';

const HOSTDEV = [
  `    <hostdev mode='subsystem' type='pci' managed='yes'>`,
  `      <source>`,
  `        <address domain='0x0000' bus='0x3b' slot='0x03' function='0x0'/>`,
  `      </source>`,
  `      <alias name='ua-vfbroker-0000-3b-03-0'/>`,
  `    </hostdev>`,
];

const OVERRIDE = [
  `  <qemu:override>`,
  `    <qemu:device alias='ua-vfbroker-0000-3b-03-0'>`,
  `      <qemu:frontend>`,
  `        <qemu:property name='vf-token' type='string' value='${TOKEN}'/>`,
  `      </qemu:frontend>`,
  `    </qemu:device>`,
  `  </qemu:override>`,
];

function fails(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isVfbError(err, code), `expected ${code}, got ${String(err)}`);
    assert.match(err.message, message);
    assertNoSecretsIn(
      `${err.message} ${err.hint} ${JSON.stringify(err.details)}`,
      [TOKEN, OTHER_TOKEN],
      'the error',
    );
    return true;
  });
}

/** Replaces exactly one occurrence, so a test states precisely which bytes an edit may change. */
function replaceOnce(text: string, from: string, to: string): string {
  assert.equal(text.split(from).length, 2, `expected exactly one ${JSON.stringify(from)}`);
  return text.replace(from, () => to);
}

describe('vfbrokerAlias', () => {
  it('is a user alias libvirt accepts', () => {
    assert.equal(vfbrokerAlias(parsePciAddress('10000:af:1f.7')), 'ua-vfbroker-10000-af-1f-7');
  });
});

describe('attachVf', () => {
  it('adds the hostdev, the override and the namespace declaration, and nothing else', () => {
    const original = domainFixture('no-hostdevs');
    let expected = replaceOnce(
      original,
      `<domain type='kvm'>`,
      `<domain type='kvm' xmlns:qemu='${QEMU_NS}'>`,
    );
    expected = replaceOnce(expected, `    </memballoon>\n`, `    </memballoon>\n${HOSTDEV.join('\n')}\n`);
    expected = replaceOnce(expected, `  </devices>\n`, `  </devices>\n${OVERRIDE.join('\n')}\n`);
    assert.deepEqual(attachVf(original, NEW_VF, TOKEN), { xml: expected, changed: true });
  });

  it('keeps CRLF line endings, and removes them with what it added', () => {
    const original = domainFixture('no-hostdevs').replaceAll('\n', '\r\n');
    const { xml } = attachVf(original, NEW_VF, TOKEN);
    assert.ok(
      xml.includes(
        `</memballoon>\r\n${HOSTDEV.join('\r\n')}\r\n  </devices>\r\n${OVERRIDE.join('\r\n')}\r\n</domain>`,
      ),
    );
    assert.ok(!/[^\r]\n/.test(xml));
    assert.equal(detachVf(xml, NEW_VF).xml, original);
  });

  it("adds to the user's own override under the user's prefix, keeping their elements", () => {
    const original = domainFixture('user-qemu-override');
    const userDevice = `    <q:device alias="ua-disk0">\n      <q:frontend>\n        <q:property name="x-user-tweak" type="bool" value="true"/>\n      </q:frontend>\n    </q:device>\n`;
    const ours = OVERRIDE.slice(1, -1)
      .map((l) => l.replaceAll('qemu:', 'q:'))
      .join('\n');
    let expected = replaceOnce(
      original,
      `      </source>\n    </hostdev>\n`,
      `      </source>\n    </hostdev>\n${HOSTDEV.join('\n')}\n`,
    );
    expected = replaceOnce(expected, userDevice, `${userDevice}${ours}\n`);
    assert.equal(attachVf(original, NEW_VF, TOKEN).xml, expected);
  });

  it('turns a self-closing <devices/> into an element', () => {
    const original = `<domain>\n  <name>g</name>\n  <uuid>6f1c3a52-1b0e-4d39-9a4e-2f0c9b7d8e11</uuid>\n  <devices/>\n</domain>\n`;
    const { xml } = attachVf(original, NEW_VF, TOKEN);
    assert.ok(
      xml.includes(`  <devices>\n${HOSTDEV.join('\n')}\n  </devices>\n${OVERRIDE.join('\n')}\n</domain>`),
    );
    assert.deepEqual(readDomainXml(xml).pciDevices, [
      { kind: 'hostdev', address: NEW_VF, alias: vfbrokerAlias(NEW_VF) },
    ]);
  });

  it('refuses a VF the guest already has, naming it and the fix', () => {
    fails(
      () => attachVf(domainFixture('single-hostdev'), parsePciAddress('0000:3b:02.1'), TOKEN),
      'CONFLICT',
      /^VF 0000:3b:02.1 is already assigned to guest fec-du1 \(<hostdev>\)$/,
    );
    fails(
      () => attachVf(domainFixture('decimal-attributes'), parsePciAddress('0000:3b:02.3'), TOKEN),
      'CONFLICT',
      /already assigned to guest handmade/,
    );
  });

  it('refuses a token that is not a UUID without echoing it', () => {
    fails(
      () => attachVf(domainFixture('no-hostdevs'), NEW_VF, TOKEN.toUpperCase()),
      'INVALID_ARGUMENT',
      /^the VF token is not a lower-case UUID$/,
    );
  });

  it('refuses a definition that binds the qemu prefix to another namespace', () => {
    const original = `<domain xmlns:qemu='urn:other'><name>g</name><uuid>6f1c3a52-1b0e-4d39-9a4e-2f0c9b7d8e11</uuid><devices/></domain>`;
    fails(
      () => attachVf(original, NEW_VF, TOKEN),
      'INVALID_ARGUMENT',
      /binds the prefix 'qemu' to another namespace/,
    );
  });

  for (const name of DOMAIN_FIXTURES) {
    it(`round-trips through detach on ${name}`, () => {
      const original = domainFixture(name);
      const attached = attachVf(original, NEW_VF, TOKEN).xml;
      const info = readDomainXml(attached);
      assert.deepEqual(
        info.pciDevices.filter((d) => d.address === NEW_VF),
        [{ kind: 'hostdev', address: NEW_VF, alias: vfbrokerAlias(NEW_VF) }],
      );
      assert.equal(info.vfTokens.get(vfbrokerAlias(NEW_VF)), TOKEN);
      assert.deepEqual(detachVf(attached, NEW_VF), { xml: original, changed: true });
    });
  }
});

describe('syncVfToken', () => {
  it('replaces a stale token and nothing else', () => {
    const original = domainFixture('stale-token');
    const expected = replaceOnce(original, '11111111-2222-4333-8444-555555555555', TOKEN);
    assert.deepEqual(syncVfToken(original, parsePciAddress('0000:3b:02.2'), TOKEN), {
      xml: expected,
      changed: true,
    });
  });

  it('changes nothing when the token is current', () => {
    const original = domainFixture('single-hostdev');
    const current = '8a6c2f0e-3f4b-4d8a-9c1e-5b7d2e4f6a80';
    assert.deepEqual(syncVfToken(original, parsePciAddress('0000:3b:02.1'), current), {
      xml: original,
      changed: false,
    });
  });

  it('gives an interface hostdev with a user alias its override', () => {
    const original = domainFixture('interface-hostdev');
    const { xml } = syncVfToken(original, parsePciAddress('0000:af:02.3'), TOKEN);
    let expected = replaceOnce(
      original,
      `<domain type='kvm'>`,
      `<domain type='kvm' xmlns:qemu='${QEMU_NS}'>`,
    );
    const override = OVERRIDE.map((l) => l.replace('ua-vfbroker-0000-3b-03-0', 'ua-net-uplink'));
    expected = replaceOnce(expected, `  </devices>\n`, `  </devices>\n${override.join('\n')}\n`);
    assert.equal(xml, expected);
  });

  it("gives the user's hostdev without an alias one, and a token beside the user's override", () => {
    const original = domainFixture('user-qemu-override');
    const vf = parsePciAddress('0000:3b:02.4');
    const { xml } = syncVfToken(original, vf, TOKEN);
    const expectedDevice = `      </source>\n      <alias name='ua-vfbroker-0000-3b-02-4'/>\n    </hostdev>`;
    assert.ok(xml.includes(expectedDevice));
    const info = readDomainXml(xml);
    assert.deepEqual(Object.fromEntries(info.vfTokens), { 'ua-vfbroker-0000-3b-02-4': TOKEN });
    // Undoing the two insertions gives back the original byte for byte.
    const ours = `\n    <q:device alias='ua-vfbroker-0000-3b-02-4'>\n      <q:frontend>\n        <q:property name='vf-token' type='string' value='${TOKEN}'/>\n      </q:frontend>\n    </q:device>`;
    const undone = replaceOnce(
      replaceOnce(xml, ours, ''),
      `\n      <alias name='ua-vfbroker-0000-3b-02-4'/>`,
      '',
    );
    assert.equal(undone, original);
  });

  it('rewrites a vf-token property of the wrong type, and adds one to a device override without it', () => {
    const head = `<domain xmlns:qemu='${QEMU_NS}'><name>g</name><uuid>6f1c3a52-1b0e-4d39-9a4e-2f0c9b7d8e11</uuid><devices><hostdev mode='subsystem' type='pci'><source><address bus='0x3b' slot='0x03' function='0x0'/></source><alias name='ua-x'/></hostdev></devices>`;
    const wrongType = `${head}<qemu:override><qemu:device alias='ua-x'><qemu:frontend><qemu:property name='vf-token' type='bool' value='true'/></qemu:frontend></qemu:device></qemu:override></domain>`;
    assert.equal(
      syncVfToken(wrongType, NEW_VF, TOKEN).xml,
      replaceOnce(
        wrongType,
        `<qemu:property name='vf-token' type='bool' value='true'/>`,
        `<qemu:property name='vf-token' type='string' value='${TOKEN}'/>`,
      ),
    );
    const noFrontend = `${head}<qemu:override><qemu:device alias='ua-x'/></qemu:override></domain>`;
    assert.equal(readDomainXml(syncVfToken(noFrontend, NEW_VF, TOKEN).xml).vfTokens.get('ua-x'), TOKEN);
  });

  it('refuses a device whose alias is not a user alias', () => {
    const live = `<domain><name>g</name><uuid>6f1c3a52-1b0e-4d39-9a4e-2f0c9b7d8e11</uuid><devices><hostdev mode='subsystem' type='pci'><source><address bus='0x3b' slot='0x03' function='0x0'/></source><alias name='hostdev0'/></hostdev></devices></domain>`;
    fails(
      () => syncVfToken(live, NEW_VF, TOKEN),
      'INVALID_ARGUMENT',
      /alias 'hostdev0', which is not a user alias/,
    );
  });

  it('refuses a VF the guest does not have, naming the attach command', () => {
    assert.throws(
      () => syncVfToken(domainFixture('no-hostdevs'), NEW_VF, TOKEN),
      (err: unknown) =>
        isVfbError(err, 'NOT_FOUND') &&
        err.message === 'guest web01 has no device for VF 0000:3b:03.0' &&
        err.hint === 'run `vfbroker guest attach web01 0000:3b:03.0` to add it',
    );
  });
});

describe('detachVf', () => {
  it('removes the device, its override and the namespace declaration no longer used', () => {
    const original = domainFixture('single-hostdev');
    const { xml } = detachVf(original, parsePciAddress('0000:3b:02.1'));
    assert.ok(!xml.includes('qemu:'));
    assert.ok(!xml.includes('hostdev'));
    const start = original.indexOf('    <hostdev');
    const end = original.indexOf('</hostdev>\n') + '</hostdev>\n'.length;
    let expected = original.slice(0, start) + original.slice(end);
    expected = expected.slice(0, expected.indexOf('  <qemu:override>')) + '</domain>\n';
    expected = replaceOnce(expected, ` xmlns:qemu='${QEMU_NS}'`, '');
    assert.equal(xml, expected);
  });

  it("keeps the user's override and namespace when they still hold something", () => {
    const original = domainFixture('user-qemu-override');
    const vf = parsePciAddress('0000:3b:02.4');
    const { xml } = detachVf(syncVfToken(original, vf, TOKEN).xml, vf);
    const start = original.indexOf('    <hostdev');
    const end = original.indexOf('</hostdev>\n') + '</hostdev>\n'.length;
    assert.equal(xml, original.slice(0, start) + original.slice(end));
  });

  it('refuses a VF the guest does not have', () => {
    fails(
      () => detachVf(domainFixture('multifunction'), NEW_VF),
      'NOT_FOUND',
      /^guest dpdk-lab has no device for VF 0000:3b:03.0$/,
    );
  });
});
