import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  formatPciAddress,
  isPciAddress,
  parseLibvirtPciAddress,
  parsePciAddress,
  parsePciAddressParts,
} from '../../../src/pci/address.js';
import { VfbError } from '../../../src/errors.js';

const parts = fc.record({
  domain: fc.integer({ min: 0, max: 0xffffffff }),
  bus: fc.integer({ min: 0, max: 0xff }),
  slot: fc.integer({ min: 0, max: 0x1f }),
  function: fc.integer({ min: 0, max: 7 }),
});

function rejects(fn: () => unknown): VfbError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof VfbError);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.ok(!err.message.includes('\n'));
    return err;
  }
  assert.fail('expected INVALID_ARGUMENT');
}

describe('parsePciAddress', () => {
  it('accepts the canonical form and nothing else', () => {
    assert.equal(parsePciAddress('0000:3b:02.1'), '0000:3b:02.1');
    assert.equal(parsePciAddress('10000:00:1f.7'), '10000:00:1f.7');
    for (const bad of [
      '0000:3B:02.1',
      '3b:02.1',
      '000:3b:02.1',
      '0000:3b:2.1x',
      '0000:3b:2.1',
      '0000:3b:02.8',
      '0000:3b:20.0',
    ]) {
      rejects(() => parsePciAddress(bad));
    }
  });

  it('rejects anything that could escape a sysfs path', () => {
    for (const bad of [
      '../../etc',
      '0000:3b:02.1/../x',
      '0000:3b:02.1\0',
      ' 0000:3b:02.1',
      '0000:3b:02.1 ',
      '0000:3b:02.1\n',
      '',
      '/',
      '..',
      '0000:3b:02.1/driver',
      '0'.repeat(1000),
    ]) {
      rejects(() => parsePciAddress(bad));
    }
  });

  it('says what was expected, with the input escaped', () => {
    const err = rejects(() => parsePciAddress('0000:3B:02.1'));
    assert.equal(
      err.message,
      'invalid PCI address "0000:3B:02.1": not in canonical form (expected 0000:3b:02.1)',
    );
    const nul = rejects(() => parsePciAddress('a\u0000b'));
    assert.ok(nul.message.includes('\\u0000'));
    const token = '6f1c0a52-8d3e-4b7a-9c21-0e5d4f3a2b1c';
    assert.equal(
      rejects(() => parsePciAddress(token)).message.includes(token.slice(0, 8)),
      false,
      'a token given as an address is not echoed',
    );
  });

  it('lenient mode takes what people type', () => {
    assert.equal(parsePciAddress('3B:2.1', { lenient: true }), '0000:3b:02.1');
    assert.equal(parsePciAddress('1:00:1f.3', { lenient: true }), '0001:00:1f.3');
    rejects(() => parsePciAddress('3b:02.1/..', { lenient: true }));
  });

  it('round-trips every valid address', () => {
    fc.assert(
      fc.property(parts, (p) => {
        const s = formatPciAddress(p);
        assert.equal(parsePciAddress(s), s);
        assert.deepEqual(parsePciAddressParts(s), { ...p });
        assert.ok(isPciAddress(s));
        assert.equal(parsePciAddress(s.toUpperCase(), { lenient: true }), s);
      }),
    );
  });

  it('never accepts a string holding a path separator, dot-dot, NUL or whitespace', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        let ok: string | null = null;
        try {
          ok = parsePciAddress(s, { lenient: true });
        } catch (err) {
          assert.ok(err instanceof VfbError && err.code === 'INVALID_ARGUMENT');
        }
        if (ok !== null) assert.match(ok, /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parseLibvirtPciAddress', () => {
  it('reads hex, decimal and leading-zero octal as libvirt does', () => {
    const want = '0000:3b:02.1';
    assert.equal(
      parseLibvirtPciAddress({ domain: '0x0000', bus: '0x3b', slot: '0x02', function: '0x1' }),
      want,
    );
    assert.equal(parseLibvirtPciAddress({ domain: '0', bus: '59', slot: '2', function: '1' }), want);
    assert.equal(parseLibvirtPciAddress({ domain: '00', bus: '073', slot: '02', function: '01' }), want);
    assert.equal(parseLibvirtPciAddress({ bus: '0x3b', slot: '0x02' }), '0000:3b:02.0');
    assert.equal(
      parseLibvirtPciAddress({ domain: '0x10000', bus: '0', slot: '0', function: '0' }),
      '10000:00:00.0',
    );
  });

  it('rejects what libvirt would reject, naming the attribute', () => {
    assert.match(rejects(() => parseLibvirtPciAddress({ bus: '0x3b' })).message, /slot attribute is missing/);
    assert.match(
      rejects(() => parseLibvirtPciAddress({ bus: '256', slot: '0' })).message,
      /bus out of range/,
    );
    assert.match(
      rejects(() => parseLibvirtPciAddress({ bus: '08', slot: '0' })).message,
      /bus='08' is not a number/,
    );
    assert.match(rejects(() => parseLibvirtPciAddress({ bus: '-1', slot: '0' })).message, /not a number/);
    assert.match(
      rejects(() => parseLibvirtPciAddress({ bus: '0x3b', slot: '0x20' })).message,
      /slot out of range/,
    );
    assert.match(
      rejects(() => parseLibvirtPciAddress({ bus: '0x3b', slot: '0', function: '8' })).message,
      /function out of range/,
    );
    rejects(() => parseLibvirtPciAddress({ bus: ' 1', slot: '0' }));
    rejects(() => parseLibvirtPciAddress({ bus: '1 ', slot: '0' }));
    rejects(() => parseLibvirtPciAddress({ bus: '0x', slot: '0' }));
  });

  it('agrees with a strtoul(base 0) model on any number-like attribute', () => {
    const asC = fc.oneof(
      fc.integer({ min: 0, max: 0xff }).map((n) => ({ s: '0x' + n.toString(16), n })),
      fc.integer({ min: 0, max: 0xff }).map((n) => ({ s: n.toString(10), n })),
      fc.integer({ min: 1, max: 0xff }).map((n) => ({ s: '0' + n.toString(8), n })),
    );
    fc.assert(
      fc.property(asC, ({ s, n }) => {
        assert.equal(
          parseLibvirtPciAddress({ bus: s, slot: '0' }),
          formatPciAddress({ domain: 0, bus: n, slot: 0, function: 0 }),
        );
      }),
    );
  });
});
