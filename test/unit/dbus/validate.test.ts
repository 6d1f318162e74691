import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  devices,
  guestUuid,
  MAX_DEVICES,
  MAX_TEXT,
  pciAddress,
  presentedToken,
  text,
  vfCount,
} from '../../../src/broker/dbus/validate.js';
import { VfbError } from '../../../src/errors.js';

const TOKEN = '6f1c2a4e-8d3b-4f7a-9c1e-2b5d7e9f0a13';

function refused(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof VfbError);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.ok(!err.message.includes('\n'));
    return err.message;
  }
  assert.fail('expected INVALID_ARGUMENT');
}

describe('D-Bus argument checks', () => {
  it('guest UUIDs: any case in, lower case out; anything else refused', () => {
    assert.equal(guestUuid(TOKEN.toUpperCase()), TOKEN);
    for (const bad of ['', 'x', `${TOKEN} `, TOKEN.replaceAll('-', ''), `{${TOKEN}}`, 42, null]) {
      refused(() => guestUuid(bad));
    }
  });

  it('PCI addresses: strict canonical form, named in the message', () => {
    assert.equal(pciAddress('0000:3b:02.1', 'VF address'), '0000:3b:02.1');
    assert.equal(
      refused(() => pciAddress('3b:02.1', 'VF address')),
      'VF address: invalid PCI address "3b:02.1": not in canonical form (expected 0000:3b:02.1)',
    );
    assert.equal(
      refused(() => pciAddress(7, 'PF address')),
      'the PF address is not a string',
    );
  });

  it('never repeats a long value given as an address: it may be a token', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 17, maxLength: 200 }), (s) => {
        const message = refused(() => pciAddress(s, 'VF address'));
        assert.equal(
          message,
          `the VF address is not a PCI address (${s.length} characters; expected DDDD:BB:DD.F)`,
        );
      }),
    );
    assert.ok(!refused(() => pciAddress(TOKEN, 'VF address')).includes(TOKEN.slice(0, 8)));
  });

  it('presented tokens: "" is none, a UUID is lower-cased, the rest refused unquoted', () => {
    assert.equal(presentedToken('', 0), null);
    assert.equal(presentedToken(TOKEN.toUpperCase(), 0), TOKEN);
    const almost = TOKEN.slice(0, -1);
    assert.equal(
      refused(() => presentedToken(almost, 3)),
      'device 3: the presented vf-token is not a UUID',
    );
  });

  it('devices: pairs only, at most MAX_DEVICES', () => {
    assert.deepEqual(devices([['0000:3b:02.1', TOKEN]]), [
      { address: '0000:3b:02.1', presentedToken: TOKEN },
    ]);
    assert.equal(
      devices(Array.from({ length: MAX_DEVICES }, () => ['0000:3b:02.1', ''])).length,
      MAX_DEVICES,
    );
    assert.equal(
      refused(() => devices(Array.from({ length: MAX_DEVICES + 1 }, () => ['0000:3b:02.1', '']))),
      `more than ${MAX_DEVICES} devices (${MAX_DEVICES + 1})`,
    );
    assert.equal(
      refused(() => devices([['0000:3b:02.1']])),
      'device 0 is not an (address, token) pair',
    );
    assert.equal(
      refused(() => devices('x')),
      'the device list is not an array',
    );
  });

  it('free text: bounded, one line, no control characters', () => {
    assert.equal(text('vm-01 (prod)', 'guest name'), 'vm-01 (prod)');
    assert.equal(text('x'.repeat(MAX_TEXT), 'guest name').length, MAX_TEXT);
    assert.equal(
      refused(() => text('x'.repeat(MAX_TEXT + 1), 'guest name')),
      `the guest name is longer than ${MAX_TEXT} characters`,
    );
    for (const bad of ['a\nb', 'a\rb', 'a\u001bb', 'a\u007fb', 'a\u0085b']) {
      assert.equal(
        refused(() => text(bad, 'guest name')),
        'the guest name contains control characters',
      );
    }
    assert.equal(
      refused(() => text('', 'guest name')),
      'the guest name is empty',
    );
    assert.equal(text('', 'release reason', { allowEmpty: true }), '');
  });

  it('VF counts: whole numbers within what SR-IOV can express', () => {
    assert.equal(vfCount(0), 0);
    assert.equal(vfCount(0xffff), 0xffff);
    for (const bad of [0x10000, -1, 1.5, NaN, '3']) refused(() => vfCount(bad));
  });
});
