import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideDevice, sameToken, type DeviceFacts } from '../../../src/broker/verdict.js';
import { parsePciAddress } from '../../../src/pci/address.js';

const guest = { uuid: '0b7c8d1e-2f3a-4b5c-8d6e-7f8091a2b3c4', name: 'vran-du-1' };
const ACTIVE = '6f1c0a52-8d3e-4b7a-9c21-0e5d4f3a2b1c';
const OLD = '1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5';
const VF = parsePciAddress('0000:3b:10.2');
const PF = parsePciAddress('0000:3b:00.0');

const base: Extract<DeviceFacts, { kind: 'managed' }> = {
  kind: 'managed',
  address: VF,
  pf: PF,
  index: 1,
  needsToken: true,
  policy: { allowed: true, reason: 'allowed by rule 1 in /etc/vfbroker/policy.yaml:3' },
  pfProblem: null,
  rotating: false,
  heldBy: null,
  activeToken: ACTIVE,
  activeGeneration: 4,
  presentedToken: ACTIVE,
};

describe('decideDevice', () => {
  it('accepts an authorised guest presenting the active token', () => {
    assert.deepEqual(decideDevice(guest, base), {
      verdict: 'ok',
      message: 'VF 0000:3b:10.2 (PF 0000:3b:00.0 VF 1) ready for guest vran-du-1',
    });
  });

  it('gives each refusal its own verdict and a one-line message with the fix', () => {
    const cases: Array<[Partial<typeof base> | 'unmanaged', string, RegExp]> = [
      ['unmanaged', 'unknown-vf', /^0000:3b:10\.2 is not a VF of a PF vfbroker manages; add its PF to/],
      [{ needsToken: false }, 'no-token-needed', /no VF token involved$/],
      [
        { policy: { allowed: false, reason: 'no rule grants it (default deny)' } },
        'denied',
        /not granted to guest vran-du-1 \(no rule grants it \(default deny\)\); grant it in \/etc\/vfbroker\/policy\.yaml, check with: vfbroker policy check --guest 0b7c8d1e-2f3a-4b5c-8d6e-7f8091a2b3c4 --vf 0000:3b:10\.2$/,
      ],
      [
        { pfProblem: 'driver-running: igb-pf-app exited with status 1' },
        'pf-not-ready',
        /its PF is not ready \(driver-running: igb-pf-app exited with status 1\); see: vfbroker pf status 0000:3b:00\.0$/,
      ],
      [{ rotating: true }, 'rotating', /retry when it completes \(vfbroker token status 0000:3b:00\.0\)$/],
      [{ heldBy: { uuid: 'x', name: 'other-vm' } }, 'busy', /in use by guest other-vm/],
      [{ activeToken: null }, 'unknown-vf', /vfbroker pf up 0000:3b:00\.0$/],
      [{ presentedToken: null }, 'token-missing', /run: vfbroker guest sync vran-du-1$/],
      [
        { presentedToken: OLD },
        'token-stale',
        /outdated vf-token \(active generation 4\); run: vfbroker guest sync vran-du-1$/,
      ],
    ];
    for (const [change, verdict, message] of cases) {
      const facts: DeviceFacts =
        change === 'unmanaged' ? { kind: 'unmanaged', address: VF } : { ...base, ...change };
      const d = decideDevice(guest, facts);
      assert.equal(d.verdict, verdict, JSON.stringify(change));
      assert.match(d.message, message);
      assert.ok(!d.message.includes('\n'));
      assert.ok(!d.message.includes(ACTIVE) && !d.message.includes(OLD), 'no token in a message');
    }
  });

  it('tells an unauthorised guest nothing about tokens, even when its token is wrong', () => {
    const d = decideDevice(guest, {
      ...base,
      policy: { allowed: false, reason: 'default deny' },
      presentedToken: OLD,
    });
    assert.equal(d.verdict, 'denied');
  });
});

describe('sameToken', () => {
  it('compares UUIDs case-insensitively and rejects anything else', () => {
    assert.equal(sameToken(ACTIVE.toUpperCase(), ACTIVE), true);
    assert.equal(sameToken(OLD, ACTIVE), false);
    assert.equal(sameToken(ACTIVE.replaceAll('-', ''), ACTIVE), false);
    assert.equal(sameToken('', ACTIVE), false);
    assert.equal(sameToken(ACTIVE + ' ', ACTIVE), false);
  });

  it('tells apart tokens that differ in any one digit, in either case', () => {
    for (let i = 0; i < ACTIVE.length; i++) {
      if (ACTIVE[i] === '-') continue;
      for (const digit of '0123456789abcdefABCDEF') {
        const other = ACTIVE.slice(0, i) + digit + ACTIVE.slice(i + 1);
        const same = digit.toLowerCase() === ACTIVE[i];
        assert.equal(sameToken(other, ACTIVE), same, `digit ${i} as ${digit}`);
        assert.equal(sameToken(ACTIVE, other), same, `digit ${i} as ${digit}, swapped`);
      }
    }
  });
});
