import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Acl, parsePolicy, PolicyError, PolicyStore } from '../../support/vault/policy.js';

function acl(hcl: string): Acl {
  return new Acl(parsePolicy(hcl));
}

describe('vault test server: policy parsing', () => {
  it('reads path blocks with comments, trailing commas and a leading slash', () => {
    const rules = parsePolicy(`
      # the broker's own secrets
      path "/secret/data/vfbroker/+/pf/*" {
        capabilities = ["create", "read", "update",] // trailing comma
      }
      /* listing */ path "secret/metadata/vfbroker/*" { capabilities = ["list"] }
    `);
    assert.deepEqual(
      rules.map((r) => [r.pattern, [...r.capabilities]]),
      [
        ['secret/data/vfbroker/+/pf/*', ['create', 'read', 'update']],
        ['secret/metadata/vfbroker/*', ['list']],
      ],
    );
  });

  it('rejects what Vault rejects, naming the path', () => {
    assert.throws(() => parsePolicy('path "a/*" { capabilities = ["write"] }'), {
      name: 'PolicyError',
      message: 'path "a/*": invalid capability "write"',
    });
    assert.throws(() => parsePolicy('path "a/+*" { capabilities = ["read"] }'), {
      message: `path "a/+*": invalid use of wildcards ('+*' is forbidden)`,
    });
    assert.throws(() => parsePolicy('path "a" { capabilities = ["read"]'), PolicyError);
    assert.throws(
      () => parsePolicy('path "a" { policy = "read" }'),
      /not supported by the Vault test server/,
    );
  });

  it('refuses to overwrite root, and lower-cases names like Vault', () => {
    const store = new PolicyStore();
    assert.throws(() => store.write('root', ''), { message: 'cannot update root policy' });
    store.write('VFB', 'path "x" { capabilities = ["read"] }');
    assert.equal(store.acl(['vfb']).allows('x', 'read'), true);
  });
});

describe('vault test server: ACL matching (vault/acl.go)', () => {
  it('denies by default and allows only the listed capabilities', () => {
    const a = acl('path "secret/data/a" { capabilities = ["read"] }');
    assert.equal(a.allows('secret/data/a', 'read'), true);
    assert.equal(a.allows('secret/data/a', 'update'), false);
    assert.equal(a.allows('secret/data/b', 'read'), false);
    assert.equal(new Acl([]).allows('secret/data/a', 'read'), false);
  });

  it('treats * as a plain string prefix, not a segment glob', () => {
    const a = acl('path "secret/data/foo*" { capabilities = ["read"] }');
    assert.equal(a.allows('secret/data/foo', 'read'), true);
    assert.equal(a.allows('secret/data/foobar', 'read'), true);
    assert.equal(a.allows('secret/data/foo/bar/baz', 'read'), true);
    assert.equal(a.allows('secret/data/fo', 'read'), false);
  });

  it('matches + against exactly one segment', () => {
    const a = acl('path "secret/data/vfbroker/+/pf/*" { capabilities = ["read"] }');
    assert.equal(a.allows('secret/data/vfbroker/host1/pf/0000:3b:00.0', 'read'), true);
    assert.equal(a.allows('secret/data/vfbroker/host1/pf/', 'read'), true);
    assert.equal(a.allows('secret/data/vfbroker/a/b/pf/0000:3b:00.0', 'read'), false);
    assert.equal(a.allows('secret/data/vfbroker/host1/vf/0000:3b:00.0', 'read'), false);
    const exact = acl('path "secret/data/+/x" { capabilities = ["read"] }');
    assert.equal(exact.allows('secret/data/a/x', 'read'), true);
    assert.equal(exact.allows('secret/data/a/x/y', 'read'), false);
    assert.equal(exact.allows('secret/data/a/xy', 'read'), false);
  });

  it('prefers an exact rule over any glob', () => {
    const a = acl(`
      path "secret/data/*" { capabilities = ["read"] }
      path "secret/data/locked" { capabilities = ["deny"] }
    `);
    assert.equal(a.allows('secret/data/open', 'read'), true);
    assert.equal(a.allows('secret/data/locked', 'read'), false);
  });

  it('prefers the longest prefix among * rules', () => {
    const a = acl(`
      path "secret/*" { capabilities = ["read"] }
      path "secret/data/private/*" { capabilities = ["deny"] }
    `);
    assert.equal(a.allows('secret/data/public', 'read'), true);
    assert.equal(a.allows('secret/data/private/x', 'read'), false);
  });

  it('ranks globs by where the first wildcard sits, then non-prefix, then fewer +, then length', () => {
    // A later first wildcard wins: foo/bar/+ beats foo/+/...
    const later = acl(`
      path "foo/+/baz" { capabilities = ["read"] }
      path "foo/bar/+" { capabilities = ["deny"] }
    `);
    assert.equal(later.allows('foo/bar/baz', 'read'), false);
    // The same first wildcard: a rule without a trailing * beats one with.
    const nonPrefix = acl(`
      path "foo/+/ba*" { capabilities = ["deny"] }
      path "foo/+/bar" { capabilities = ["read"] }
    `);
    assert.equal(nonPrefix.allows('foo/x/bar', 'read'), true);
    // The same shape otherwise: fewer + segments win.
    const fewer = acl(`
      path "foo/+/+/baz" { capabilities = ["deny"] }
      path "foo/+/bar/baz" { capabilities = ["read"] }
    `);
    assert.equal(fewer.allows('foo/x/bar/baz', 'read'), true);
    // A * rule whose glob comes later than a + rule's wildcard wins over it.
    const globLater = acl(`
      path "secret/+/vfbroker/*" { capabilities = ["read"] }
      path "secret/data/vfbroker/h1/*" { capabilities = ["deny"] }
    `);
    assert.equal(globLater.allows('secret/data/vfbroker/h1/pf/x', 'read'), false);
    assert.equal(globLater.allows('secret/data/vfbroker/h2/pf/x', 'read'), true);
  });

  it('merges capabilities of the same path across policies, and deny overrides the merge', () => {
    const store = new PolicyStore();
    store.write('reader', 'path "kv/data/x" { capabilities = ["read"] }');
    store.write('writer', 'path "kv/data/x" { capabilities = ["update"] }');
    store.write('blocker', 'path "kv/data/x" { capabilities = ["deny"] }');
    const both = store.acl(['reader', 'writer']);
    assert.equal(both.allows('kv/data/x', 'read'), true);
    assert.equal(both.allows('kv/data/x', 'update'), true);
    assert.equal(store.acl(['reader', 'blocker']).allows('kv/data/x', 'read'), false);
    assert.equal(store.acl(['blocker', 'reader']).allows('kv/data/x', 'read'), false);
  });

  it('checks a list path without its trailing slash first', () => {
    const a = acl('path "secret/metadata/vfbroker/*" { capabilities = ["list"] }');
    assert.equal(a.allows('secret/metadata/vfbroker/', 'list'), true);
    assert.equal(a.allows('secret/metadata/vfbroker/h1/', 'list'), true);
    assert.equal(a.allows('secret/metadata/', 'list'), false);
    const exact = acl('path "secret/metadata/vfbroker" { capabilities = ["list"] }');
    assert.equal(exact.allows('secret/metadata/vfbroker/', 'list'), true);
    assert.equal(exact.allows('secret/metadata/vfbroker/', 'read'), false);
  });

  it('lets the root policy do anything and skips policies that do not exist', () => {
    const store = new PolicyStore();
    assert.equal(store.acl(['root']).allows('anything/at/all', 'delete'), true);
    assert.equal(store.acl(['missing']).allows('secret/data/a', 'read'), false);
    assert.equal(store.acl(['missing', 'default']).allows('auth/token/lookup-self', 'read'), true);
  });
});
