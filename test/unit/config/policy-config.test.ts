import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { VfbError } from '../../../src/errors.js';
import { parseAccounts, readAccounts, type Accounts } from '../../../src/config/accounts.js';
import { loadPolicyConfig, parsePolicyConfig, type Policy } from '../../../src/config/policy-config.js';
import { ACCOUNTS_ROOT, REPO_ROOT } from './fixtures.js';

const FILE = '/etc/vfbroker/policy.yaml';
const GUEST = '6f1c2d3e-8a4b-4c5d-9e6f-0123456789ab';

const accounts: Accounts = parseAccounts(
  'root:x:0:0::/root:/bin/sh\ndpdk:x:1001:1001::/:/bin/false\n',
  'root:x:0:\nvfio-users:x:990:dpdk\n',
  {
    passwdFile: '/etc/passwd',
    groupFile: '/etc/group',
  },
);

const parse = (text: string): Policy => parsePolicyConfig(text, FILE, accounts);

function errorOf(text: string): string {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof VfbError);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.ok(!err.message.includes('\n'));
    return err.message;
  }
  assert.fail('expected CONFIG_INVALID');
}

const guestRule = (vfs: string) => `rules:\n  - guest: ${GUEST}\n    vfs: ${vfs}\n`;
const appRule = (app: string) => `rules:\n  - app: ${app}\n    vfs: [0000:3b:10.1]\n`;

describe('policy.yaml', () => {
  it('resolves guest rules, with VFs by PF and index and by address', () => {
    const policy = parse(
      `rules:\n  - guest: ${GUEST.toUpperCase()}\n    name: vdu-1\n    vfs:\n      - pf: 0000:3b:00.0\n        vfs: [0, "2-3", "7"]\n      - 0000:3b:10.1\n`,
    );
    assert.deepEqual(policy, {
      file: FILE,
      rules: [
        {
          list: 'rules',
          index: 0,
          file: FILE,
          line: 2,
          label: 'vdu-1',
          subject: { kind: 'guest', uuid: GUEST },
          vfs: ['0000:3b:10.1'],
          pfVfs: [
            {
              pf: '0000:3b:00.0',
              ranges: [
                { first: 0, last: 0 },
                { first: 2, last: 3 },
                { first: 7, last: 7 },
              ],
            },
          ],
        },
      ],
      owners: [],
    });
    assert.ok(Object.isFrozen(policy.rules[0]?.pfVfs[0]?.ranges));
  });

  it('resolves app selectors, names to ids', () => {
    const policy = parse(
      'rules:\n' +
        '  - app: { user: dpdk, group: vfio-users, unit: dpdk-fwd.service }\n    vfs: [0000:3b:10.1]\n' +
        '  - app: { user: 2000 }\n    vfs: [0000:3b:10.1]\n' +
        '  - app: { group: "991", unit: "ran@1.scope" }\n    vfs: [0000:3b:10.1]\n',
    );
    assert.deepEqual(
      policy.rules.map((r) => r.subject),
      [
        { kind: 'app', uid: 1001, gid: 990, unit: 'dpdk-fwd.service' },
        { kind: 'app', uid: 2000, gid: null, unit: null },
        { kind: 'app', uid: null, gid: 991, unit: 'ran@1.scope' },
      ],
    );
    assert.deepEqual(
      policy.rules.map((r) => r.line),
      [2, 4, 6],
    );
  });

  it('resolves owners', () => {
    const policy = parse(
      `owners:\n  - guest: ${GUEST}\n    pf: 0000:3b:00.0\n  - app: { unit: pf.service }\n    name: PF manager\n    pf: 0000:5e:00.0\n`,
    );
    assert.deepEqual(policy.owners, [
      {
        list: 'owners',
        index: 0,
        file: FILE,
        line: 2,
        label: null,
        subject: { kind: 'guest', uuid: GUEST },
        pf: '0000:3b:00.0',
      },
      {
        list: 'owners',
        index: 1,
        file: FILE,
        line: 4,
        label: 'PF manager',
        subject: { kind: 'app', uid: null, gid: null, unit: 'pf.service' },
        pf: '0000:5e:00.0',
      },
    ]);
    assert.deepEqual(parse('{}\n'), { file: FILE, rules: [], owners: [] });
  });

  it('wants exactly one consumer per rule', () => {
    assert.equal(
      errorOf('rules:\n  - name: x\n    vfs: [0000:3b:10.1]\n'),
      `${FILE}:2:5: rules[0]: expected exactly one of "guest" or "app", found neither`,
    );
    assert.equal(
      errorOf(`rules:\n  - guest: ${GUEST}\n    app: { user: dpdk }\n    vfs: [0000:3b:10.1]\n`),
      `${FILE}:2:5: rules[0]: expected exactly one of "guest" or "app", found "guest" and "app"`,
    );
    assert.equal(
      errorOf(appRule('{}')),
      `${FILE}:2:5: rules[0].app: expected at least one of "user", "group" or "unit", found none`,
    );
    assert.equal(
      errorOf(`owners:\n  - pf: 0000:3b:00.0\n`),
      `${FILE}:2:5: owners[0]: expected exactly one of "guest" or "app", found neither`,
    );
  });

  it('names users and groups it cannot find', () => {
    assert.equal(
      errorOf(appRule('{ user: nobody2 }')),
      `${FILE}:2:12: rules[0].app.user: no user "nobody2" in /etc/passwd (a user from LDAP or sssd must be given by its uid)`,
    );
    assert.equal(
      errorOf(appRule('{ group: wheel }')),
      `${FILE}:2:12: rules[0].app.group: no group "wheel" in /etc/group (a group from LDAP or sssd must be given by its gid)`,
    );
  });

  it('checks selectors, UUIDs, VF ranges and addresses', () => {
    assert.equal(
      errorOf(appRule('{ user: "bad name" }')),
      `${FILE}:2:12: rules[0].app.user: expected a user name or uid, like "dpdk" or 1000, found "bad name"`,
    );
    assert.equal(
      errorOf(appRule('{ user: -1 }')),
      `${FILE}:2:12: rules[0].app.user: expected a user name or uid, like "dpdk" or 1000, found -1`,
    );
    assert.equal(
      errorOf(appRule('{ user: [dpdk] }')),
      `${FILE}:2:12: rules[0].app.user: expected a user name or uid, like "dpdk" or 1000, found a list`,
    );
    assert.equal(
      errorOf(appRule('{ unit: dpdk }')),
      `${FILE}:2:12: rules[0].app.unit: expected a systemd unit like "dpdk-fwd.service", found "dpdk"`,
    );
    assert.equal(
      errorOf(`rules:\n  - guest: 6f1c\n    vfs: [0000:3b:10.1]\n`),
      `${FILE}:2:5: rules[0].guest: expected a libvirt guest UUID like "6f1c2d3e-8a4b-4c5d-9e6f-0123456789ab", found "6f1c"`,
    );
    const range = 'expected a VF index from 0 to 255 or a range like "0-3"';
    assert.equal(
      errorOf(guestRule('[{ pf: 0000:3b:00.0, vfs: ["3-1"] }]')),
      `${FILE}:3:37: rules[0].vfs[0].vfs[0]: ${range}, found "3-1"`,
    );
    assert.equal(
      errorOf(guestRule('[{ pf: 0000:3b:00.0, vfs: [256] }]')),
      `${FILE}:3:37: rules[0].vfs[0].vfs[0]: ${range}, found 256`,
    );
    assert.equal(
      errorOf(guestRule('[{ pf: 0000:3b:00.0, vfs: [1.5] }]')),
      `${FILE}:3:37: rules[0].vfs[0].vfs[0]: ${range}, found 1.5`,
    );
    assert.equal(
      errorOf(guestRule('[{ pf: 0000:3b:00.0, vfs: [all] }]')),
      `${FILE}:3:37: rules[0].vfs[0].vfs[0]: ${range}, found "all"`,
    );
    assert.equal(
      errorOf(guestRule('[{ pf: 0000:3b:00.0, vfs: [] }]')),
      `${FILE}:3:31: rules[0].vfs[0].vfs: expected at least one VF index or range, found an empty list`,
    );
    assert.equal(
      errorOf(guestRule('[{ pf: 3b:00.0, vfs: [1] }]')),
      `${FILE}:3:13: rules[0].vfs[0].pf: expected a PCI address like 0000:3b:00.0, found "3b:00.0" (did you mean 0000:3b:00.0?)`,
    );
    assert.equal(
      errorOf(guestRule('[0000:3b:10.8]')),
      `${FILE}:3:11: rules[0].vfs[0]: expected a PCI address like 0000:3b:00.0, found "0000:3b:10.8"`,
    );
    assert.equal(
      errorOf(guestRule('[5]')),
      `${FILE}:3:11: rules[0].vfs[0]: expected a VF address like 0000:3b:02.1, or a mapping with "pf" and "vfs", found 5`,
    );
    assert.equal(
      errorOf(guestRule('[]')),
      `${FILE}:3:5: rules[0].vfs: expected at least one VF, found an empty list`,
    );
  });

  it('suggests the key a typo was meant to be', () => {
    assert.equal(
      errorOf(guestRule('[{ pf: 0000:3b:00.0, vf: [1] }]')),
      `${FILE}:3:31: rules[0].vfs[0]: unknown key "vf" (did you mean "vfs"?) (and 1 more problem)`,
    );
    assert.equal(
      errorOf(`rule:\n  - guest: ${GUEST}\n`),
      `${FILE}:1:1: unknown key "rule" (did you mean "rules"?)`,
    );
    assert.equal(
      errorOf(`owners:\n  - guest: ${GUEST}\n    pfs: 0000:3b:00.0\n`),
      `${FILE}:3:5: owners[0]: unknown key "pfs" (did you mean "pf"?) (and 1 more problem)`,
    );
  });
});

describe('accounts', () => {
  it('reads passwd and group under a root, first entry winning, comments and NIS lines skipped', async () => {
    const acc = await readAccounts(ACCOUNTS_ROOT);
    assert.equal(acc.passwdFile, join(ACCOUNTS_ROOT, 'etc/passwd'));
    assert.equal(acc.uid('dpdk'), 1001);
    assert.equal(acc.uid('ran'), 1002);
    assert.equal(acc.uid('root'), 0);
    assert.equal(acc.uid('+nisuser'), null);
    assert.equal(acc.uid('nobody'), null);
    assert.equal(acc.gid('vfio-users'), 990);
    assert.equal(acc.gid('dpdk'), 1001);
  });

  it('skips malformed lines', () => {
    const acc = parseAccounts('a:x:12\nb:x:notanumber:0\nc\n:x:5:5\nd:x:99999999999:0\n', '', {
      passwdFile: 'p',
      groupFile: 'g',
    });
    assert.equal(acc.uid('a'), 12);
    assert.equal(acc.uid('b'), null);
    assert.equal(acc.uid('c'), null);
    assert.equal(acc.uid('d'), null);
  });
});

describe('loadPolicyConfig', () => {
  it('validates the shipped example', async () => {
    const path = join(REPO_ROOT, 'etc/vfbroker/policy.yaml');
    const policy = await loadPolicyConfig(path, { accountsRoot: ACCOUNTS_ROOT });
    assert.equal(policy.rules.length, 4);
    // The file's header quotes this rule's line.
    assert.equal(policy.rules[2]?.line, 32);
    assert.deepEqual(policy.rules[2]?.subject, {
      kind: 'app',
      uid: 1001,
      gid: null,
      unit: 'dpdk-fwd.service',
    });
    assert.deepEqual(policy.rules[3]?.subject, { kind: 'app', uid: null, gid: 990, unit: null });
    assert.equal(policy.owners[0]?.pf, '0000:af:00.0');
    assert.deepEqual(policy.owners[1]?.subject, {
      kind: 'guest',
      uuid: '3e8f1a2b-4c5d-4e6f-9a0b-1c2d3e4f5a6b',
    });
  });

  it('fails on a user the accounts root does not have', async () => {
    const path = join(REPO_ROOT, 'etc/vfbroker/policy.yaml');
    const empty = join(REPO_ROOT, 'test/fixtures/config/no-such-root');
    await assert.rejects(loadPolicyConfig(path, { accountsRoot: empty }), (err: unknown) => {
      assert.ok(err instanceof VfbError);
      assert.equal(err.message, `${join(empty, 'etc/passwd')}: cannot open the file (ENOENT)`);
      return true;
    });
  });
});
