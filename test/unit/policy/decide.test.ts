import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseAccounts } from '../../../src/config/accounts.js';
import {
  parsePolicyConfig,
  type GrantRule,
  type Policy,
  type PolicySubject,
} from '../../../src/config/policy-config.js';
import {
  decideApp,
  decideGuest,
  decideOwner,
  type AppCaller,
  type VfLocator,
} from '../../../src/broker/policy/decide.js';
import { formatPciAddress, type PciAddress } from '../../../src/pci/address.js';

const FILE = '/etc/vfbroker/policy.yaml';
const G1 = '6f1c2d3e-8a4b-4c5d-9e6f-0123456789ab';
const G2 = '0b7e4a12-3c5d-4e6f-8a9b-c0d1e2f3a4b5';
const PF_A = '0000:3b:00.0' as PciAddress;
const PF_B = '0000:5e:00.0' as PciAddress;

/** VF n of PF_A is 0000:3b:10.(n): a made-up topology, as sysfs would report it. */
const vfA = (n: number) => formatPciAddress({ domain: 0, bus: 0x3b, slot: 0x10 + (n >> 3), function: n & 7 });
const vfB = (n: number) => formatPciAddress({ domain: 0, bus: 0x5e, slot: 0x01 + (n >> 3), function: n & 7 });
const locate: VfLocator = (vf) => {
  for (let n = 0; n < 64; n++) {
    if (vf === vfA(n)) return { pf: PF_A, index: n };
    if (vf === vfB(n)) return { pf: PF_B, index: n };
  }
  return null;
};
const nowhere: VfLocator = () => null;

const accounts = parseAccounts('dpdk:x:1001:1001::/:/bin/false\n', 'vfio-users:x:990:\n', {
  passwdFile: '/etc/passwd',
  groupFile: '/etc/group',
});

const POLICY = parsePolicyConfig(
  `rules:
  - guest: ${G1}
    vfs:
      - pf: ${PF_A}
        vfs: ["0-3"]
  - guest: ${G1}
    vfs: [${vfB(5)}, { pf: ${PF_A}, vfs: [2, 9] }]
  - app: { user: dpdk, unit: dpdk-fwd.service }
    vfs: [{ pf: ${PF_B}, vfs: [0, 1] }]
  - app: { group: vfio-users }
    vfs: [${vfA(20)}]
  - app: { unit: tester.service }
    vfs: [{ pf: ${PF_B}, vfs: ["10-12"] }]
owners:
  - guest: ${G2}
    pf: ${PF_B}
  - app: { user: 0, unit: pf-manager.service }
    pf: ${PF_A}
`,
  FILE,
  accounts,
);

const dpdk: AppCaller = { uid: 1001, gids: [1001], unit: 'dpdk-fwd.service' };

describe('decideGuest', () => {
  it('allows a VF in a granted range and cites the first rule that grants it', () => {
    assert.deepEqual(decideGuest(POLICY, G1, vfA(2), locate), {
      allowed: true,
      rule: { list: 'rules', index: 0, file: FILE, line: 2 },
      reason: `allowed by rules[0] in ${FILE}:2`,
    });
    assert.equal(decideGuest(POLICY, G1, vfA(9), locate).reason, `allowed by rules[1] in ${FILE}:6`);
  });

  it('allows a VF granted by address, without needing its PF', () => {
    assert.equal(decideGuest(POLICY, G1, vfB(5), nowhere).reason, `allowed by rules[1] in ${FILE}:6`);
  });

  it('takes the UUID in any case', () => {
    assert.equal(decideGuest(POLICY, G1.toUpperCase(), vfA(0), locate).allowed, true);
  });

  it('denies by default, and says so', () => {
    assert.deepEqual(decideGuest(POLICY, G1, vfA(4), locate), {
      allowed: false,
      reason: `no rule grants guest ${G1} VF ${vfA(4)} (default deny)`,
    });
    assert.equal(
      decideGuest(POLICY, G2, vfA(0), locate).reason,
      `no rule grants guest ${G2} VF ${vfA(0)} (default deny)`,
    );
    // Index 5 of PF_A is not granted; VF 5 of PF_B is granted by address, not as "index 5".
    assert.equal(decideGuest(POLICY, G1, vfA(5), locate).allowed, false);
  });

  it('denies a VF granted by index when the VF cannot be placed', () => {
    assert.equal(decideGuest(POLICY, G1, vfA(1), nowhere).allowed, false);
  });

  it('never lets an app rule grant a guest', () => {
    assert.equal(decideGuest(POLICY, G1, vfA(20), locate).allowed, false);
  });
});

describe('decideApp', () => {
  it('allows a caller that matches every selector of a rule', () => {
    assert.equal(decideApp(POLICY, dpdk, vfB(1), locate).reason, `allowed by rules[2] in ${FILE}:8`);
  });

  it('denies when one selector does not match', () => {
    assert.deepEqual(decideApp(POLICY, { ...dpdk, unit: 'other.service' }, vfB(1), locate), {
      allowed: false,
      reason: `no rule grants uid 1001 (unit other.service) VF ${vfB(1)} (default deny)`,
    });
    assert.equal(
      decideApp(POLICY, { ...dpdk, unit: null }, vfB(1), locate).reason,
      `no rule grants uid 1001 (outside any systemd unit) VF ${vfB(1)} (default deny)`,
    );
    assert.equal(decideApp(POLICY, { ...dpdk, uid: 1002 }, vfB(1), locate).allowed, false);
  });

  it("matches a group among the caller's gids", () => {
    assert.equal(
      decideApp(POLICY, { uid: 5000, gids: [5000, 990], unit: null }, vfA(20), locate).reason,
      `allowed by rules[3] in ${FILE}:10`,
    );
    assert.equal(decideApp(POLICY, { uid: 5000, gids: [5000], unit: null }, vfA(20), locate).allowed, false);
  });

  it('matches a unit whatever the uid', () => {
    assert.equal(
      decideApp(POLICY, { uid: 0, gids: [0], unit: 'tester.service' }, vfB(11), locate).reason,
      `allowed by rules[4] in ${FILE}:12`,
    );
    assert.equal(
      decideApp(POLICY, { uid: 0, gids: [0], unit: 'tester.service' }, vfB(13), locate).allowed,
      false,
    );
  });

  it('cites the lowest-numbered rule, whichever selector it is filed under', () => {
    const policy = parsePolicyConfig(
      `rules:\n  - app: { group: vfio-users }\n    vfs: [${vfA(1)}]\n  - app: { user: dpdk }\n    vfs: [${vfA(1)}]\n`,
      FILE,
      accounts,
    );
    assert.equal(decideApp(policy, { uid: 1001, gids: [990], unit: null }, vfA(1), locate).rule?.index, 0);
    assert.equal(decideApp(policy, { uid: 1001, gids: [], unit: null }, vfA(1), locate).rule?.index, 1);
  });

  it('never lets a guest rule grant an app', () => {
    assert.equal(decideApp(POLICY, { uid: 0, gids: [], unit: null }, vfA(0), locate).allowed, false);
  });
});

describe('decideOwner', () => {
  it('allows the owner of a PF, guest or app', () => {
    assert.equal(
      decideOwner(POLICY, { kind: 'guest', uuid: G2 }, PF_B).reason,
      `allowed by owners[0] in ${FILE}:15`,
    );
    assert.equal(
      decideOwner(POLICY, { kind: 'app', caller: { uid: 0, gids: [0], unit: 'pf-manager.service' } }, PF_A)
        .reason,
      `allowed by owners[1] in ${FILE}:17`,
    );
  });

  it('denies anyone else, and a grant of VFs is no ownership', () => {
    assert.equal(
      decideOwner(POLICY, { kind: 'guest', uuid: G1 }, PF_A).reason,
      `no owner rule lets guest ${G1} set the VF count of PF ${PF_A} (default deny)`,
    );
    assert.equal(decideOwner(POLICY, { kind: 'guest', uuid: G2 }, PF_A).allowed, false);
    assert.equal(
      decideOwner(POLICY, { kind: 'app', caller: { uid: 0, gids: [0], unit: null } }, PF_A).reason,
      `no owner rule lets uid 0 (outside any systemd unit) set the VF count of PF ${PF_A} (default deny)`,
    );
  });
});

// The indexes must never change an answer: compare with the definition, a scan of every rule.
function reference(
  policy: Policy,
  matches: (s: PolicySubject) => boolean,
  vf: PciAddress,
  where: VfLocator,
): number | null {
  const at = where(vf);
  const rule = policy.rules.find(
    (r: GrantRule) =>
      matches(r.subject) &&
      (r.vfs.includes(vf) ||
        (at !== null &&
          r.pfVfs.some(
            (g) => g.pf === at.pf && g.ranges.some((x) => x.first <= at.index && at.index <= x.last),
          ))),
  );
  return rule === undefined ? null : rule.index;
}

const uuids = [
  '6f1c2d3e-8a4b-4c5d-9e6f-000000000001',
  '6f1c2d3e-8a4b-4c5d-9e6f-000000000002',
  '6f1c2d3e-8a4b-4c5d-9e6f-000000000003',
];
const units = ['a.service', 'b.service'];
const small = (max: number) => fc.integer({ min: 0, max });
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null });
const arbSubject: fc.Arbitrary<PolicySubject> = fc.oneof(
  fc.constantFrom(...uuids).map((uuid): PolicySubject => ({ kind: 'guest', uuid })),
  fc
    .record({ uid: maybe(small(3)), gid: maybe(small(3)), unit: maybe(fc.constantFrom(...units)) })
    .filter((s) => s.uid !== null || s.gid !== null || s.unit !== null)
    .map((s): PolicySubject => ({ kind: 'app', ...s })),
);
const arbRange = fc.tuple(small(3), small(2)).map(([first, len]) => ({ first, last: first + len }));
const arbRule = fc.record({
  subject: arbSubject,
  vfs: fc.array(small(5).map(vfA), { maxLength: 2 }),
  pfVfs: fc.array(
    fc.record({
      pf: fc.constantFrom(PF_A, PF_B),
      ranges: fc.array(arbRange, { minLength: 1, maxLength: 2 }),
    }),
    { maxLength: 2 },
  ),
});
const arbPolicy = fc.array(arbRule, { maxLength: 30 }).map((rules): Policy => ({
  file: FILE,
  rules: rules.map((r, index) => ({ list: 'rules', index, file: FILE, line: index + 2, label: null, ...r })),
  owners: [],
}));
// Few VFs and few consumers, so that rules often overlap and the cited rule is put to the test.
const arbVf = fc.oneof(small(5).map(vfA), small(5).map(vfB));
const arbCaller = fc.record({
  uid: small(3),
  gids: fc.uniqueArray(small(3), { maxLength: 3 }),
  unit: maybe(fc.constantFrom(...units)),
});

describe('decisions agree with a scan of every rule', () => {
  it('for guests', () => {
    fc.assert(
      fc.property(arbPolicy, fc.constantFrom(...uuids), arbVf, (policy, uuid, vf) => {
        const expected = reference(policy, (s) => s.kind === 'guest' && s.uuid === uuid, vf, locate);
        const decision = decideGuest(policy, uuid, vf, locate);
        assert.equal(decision.allowed, expected !== null);
        assert.equal(decision.rule?.index ?? null, expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('for apps', () => {
    fc.assert(
      fc.property(arbPolicy, arbCaller, arbVf, (policy, caller, vf) => {
        const matches = (s: PolicySubject) =>
          s.kind === 'app' &&
          (s.uid === null || s.uid === caller.uid) &&
          (s.gid === null || caller.gids.includes(s.gid)) &&
          (s.unit === null || s.unit === caller.unit);
        const expected = reference(policy, matches, vf, locate);
        const decision = decideApp(policy, caller, vf, locate);
        assert.equal(decision.allowed, expected !== null);
        assert.equal(decision.rule?.index ?? null, expected);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('a policy with 1,000 rules', () => {
  const guest = (i: number) => `6f1c2d3e-8a4b-4c5d-9e6f-${i.toString(16).padStart(12, '0')}`;
  let text = 'rules:\n';
  for (let i = 0; i < 1000; i++) {
    text +=
      i % 2 === 0
        ? `  - guest: ${guest(i)}\n    vfs: [{ pf: ${PF_A}, vfs: [${i % 64}] }]\n`
        : `  - app: { user: ${i} }\n    vfs: [${vfB(i % 64)}]\n`;
  }
  const big = parsePolicyConfig(text, FILE, accounts);

  it("finds each consumer's own rule", () => {
    for (const i of [0, 2, 500, 998]) {
      assert.equal(decideGuest(big, guest(i), vfA(i % 64), locate).rule?.index, i);
      assert.equal(decideGuest(big, guest(i), vfA((i + 1) % 64), locate).allowed, false);
    }
    for (const i of [1, 501, 999]) {
      assert.equal(decideApp(big, { uid: i, gids: [], unit: null }, vfB(i % 64), locate).rule?.index, i);
      assert.equal(decideApp(big, { uid: i + 2, gids: [], unit: null }, vfB(i % 64), locate).allowed, false);
    }
  });
});
