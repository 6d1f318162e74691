/**
 * Token and AppRole auth over HTTP against the Vault API test server
 * (api-docs/auth/token, api-docs/auth/approle), with expiry driven by the server's clock.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { vaultCall, type VaultCallResult } from '../../support/vault/call.js';
import { startVaultTestServer, type VaultTestServer } from '../../support/vault/server.js';

let server: VaultTestServer;

const lookup = (token?: string): Promise<VaultCallResult> =>
  vaultCall(server.url, 'GET', 'auth/token/lookup-self', token === undefined ? {} : { token });
const renew = (token: string, body?: unknown): Promise<VaultCallResult> =>
  vaultCall(server.url, 'POST', 'auth/token/renew-self', { token, ...(body === undefined ? {} : { body }) });
const login = (body: unknown): Promise<VaultCallResult> =>
  vaultCall(server.url, 'POST', 'auth/approle/login', { body });

function data(res: VaultCallResult): Record<string, unknown> {
  return (res.json as { data: Record<string, unknown> }).data;
}
function auth(res: VaultCallResult): Record<string, unknown> {
  return (res.json as { auth: Record<string, unknown> }).auth;
}

const DENIED = { errors: ['permission denied'] };

before(async () => {
  server = await startVaultTestServer();
});
after(async () => {
  await server.close();
});

describe('vault test server: token lookup-self', () => {
  it('describes a token, including its own id as Vault does', async () => {
    const token = server.createToken({ policies: ['vfb'], ttlSeconds: 3600, explicitMaxTtlSeconds: 7200 });
    const res = await lookup(token);
    assert.equal(res.status, 200);
    const d = data(res);
    assert.equal(d['id'], token);
    assert.deepEqual(d['policies'], ['default', 'vfb']);
    assert.equal(d['ttl'], 3600);
    assert.equal(d['creation_ttl'], 3600);
    assert.equal(d['explicit_max_ttl'], 7200);
    assert.equal(d['renewable'], true);
    assert.equal(d['type'], 'service');
    assert.equal(d['path'], 'auth/token/create');
    const expire = Date.parse(String(d['expire_time']));
    const issue = Date.parse(String(d['issue_time']));
    assert.equal(expire - issue, 3600 * 1000);
    assert.equal((res.json as { mount_type: string }).mount_type, 'token');
  });

  it('describes the root token as never expiring', async () => {
    const d = data(await lookup(server.rootToken));
    assert.deepEqual([d['policies'], d['ttl'], d['expire_time'], d['renewable']], [['root'], 0, null, false]);
  });

  it('answers a missing, an unknown and an expired token with 403 "permission denied"', async () => {
    const missing = await lookup();
    assert.deepEqual([missing.status, missing.json], [403, DENIED]);
    const unknown = await lookup('hvs.not-a-real-token');
    assert.deepEqual([unknown.status, unknown.json], [403, DENIED]);

    const token = server.createToken({ policies: [], ttlSeconds: 60 });
    server.advanceClock(59);
    assert.equal(data(await lookup(token))['ttl'], 1);
    server.advanceClock(1);
    const expired = await lookup(token);
    assert.deepEqual([expired.status, expired.json], [403, DENIED]);
    const read = await vaultCall(server.url, 'GET', 'secret/data/x', { token });
    assert.deepEqual([read.status, read.json], [403, DENIED]);
  });

  it('accepts the token as an Authorization bearer too', async () => {
    const res = await vaultCall(server.url, 'GET', 'auth/token/lookup-self', {
      headers: { Authorization: `Bearer ${server.rootToken}` },
    });
    assert.equal(res.status, 200);
  });
});

describe('vault test server: token renew-self and revoke-self', () => {
  it('renews by the creation TTL, or by the increment asked for', async () => {
    const token = server.createToken({ policies: ['vfb'], ttlSeconds: 600 });
    server.advanceClock(500);
    const again = await renew(token);
    assert.equal(again.status, 200);
    assert.deepEqual(auth(again), {
      client_token: token,
      accessor: data(await lookup(token))['accessor'],
      policies: ['default', 'vfb'],
      token_policies: ['default', 'vfb'],
      metadata: null,
      lease_duration: 600,
      renewable: true,
      entity_id: '',
      token_type: 'service',
      orphan: false,
      mfa_requirement: null,
      num_uses: 0,
    });
    const longer = await renew(token, { increment: '1h' });
    assert.equal(auth(longer)['lease_duration'], 3600);
    assert.equal(auth(await renew(token, { increment: 120 }))['lease_duration'], 120);
    server.advanceClock(119);
    assert.equal((await lookup(token)).status, 200);
    const d = data(await lookup(token));
    assert.equal(d['ttl'], 1);
    assert.equal(typeof d['last_renewal_time'], 'number');
  });

  it('caps a renewal at the explicit max TTL, with Vault’s warning', async () => {
    const token = server.createToken({ policies: [], ttlSeconds: 600, explicitMaxTtlSeconds: 1800 });
    server.advanceClock(500);
    const res = await renew(token, { increment: '1h' });
    assert.equal(res.status, 200);
    assert.equal(auth(res)['lease_duration'], 1300);
    assert.deepEqual((res.json as { warnings: string[] }).warnings, [
      'TTL of "1h0m0s" exceeded the effective max_ttl of "21m40s"; TTL value is capped accordingly',
    ]);
    server.advanceClock(1299);
    assert.equal((await lookup(token)).status, 200);
    server.advanceClock(1);
    assert.equal((await lookup(token)).status, 403);
  });

  it('refuses to renew a non-renewable token and the root token', async () => {
    const fixed = server.createToken({ policies: [], ttlSeconds: 600, renewable: false });
    const res = await renew(fixed);
    assert.deepEqual([res.status, res.json], [400, { errors: ['lease is not renewable'] }]);
    const root = await renew(server.rootToken);
    assert.deepEqual([root.status, root.json], [400, { errors: ['lease not found'] }]);
  });

  it('revokes a token', async () => {
    const token = server.createToken({ policies: [] });
    const res = await vaultCall(server.url, 'POST', 'auth/token/revoke-self', { token });
    assert.equal(res.status, 204);
    assert.equal((await lookup(token)).status, 403);
  });

  it('gives a token the system default TTL of 768h when none is asked for', async () => {
    const d = data(await lookup(server.createToken({ policies: [] })));
    assert.equal(d['creation_ttl'], 768 * 3600);
  });
});

describe('vault test server: AppRole login', () => {
  it('logs in with role_id and secret_id and returns a renewable token with the role’s policies', async () => {
    const { roleId, secretId } = server.createAppRole('broker', { policies: ['vfb'], tokenTtlSeconds: 900 });
    const res = await login({ role_id: roleId, secret_id: secretId });
    assert.equal(res.status, 200);
    const a = auth(res);
    assert.match(String(a['client_token']), /^hvs\./);
    assert.deepEqual(
      [a['policies'], a['token_policies'], a['metadata'], a['lease_duration'], a['renewable'], a['orphan']],
      [['default', 'vfb'], ['default', 'vfb'], { role_name: 'broker' }, 900, true, true],
    );
    assert.equal((res.json as { data: unknown }).data, null);
    const d = data(await lookup(String(a['client_token'])));
    assert.equal(d['path'], 'auth/approle/login');
    assert.equal(d['ttl'], 900);
  });

  it('answers a wrong secret_id and an unknown role_id alike, with 400', async () => {
    const { roleId } = server.createAppRole('wrong', { policies: [] });
    const wrong = await login({ role_id: roleId, secret_id: 'not-the-secret' });
    assert.deepEqual([wrong.status, wrong.json], [400, { errors: ['invalid role or secret ID'] }]);
    const unknown = await login({ role_id: 'no-such-role', secret_id: 'x' });
    assert.deepEqual([unknown.status, unknown.json], [400, { errors: ['invalid role or secret ID'] }]);
    assert.deepEqual((await login({ secret_id: 'x' })).json, { errors: ['missing role_id'] });
    assert.deepEqual((await login({ role_id: roleId })).json, { errors: ['missing secret_id'] });
  });

  it('ignores a token header on login', async () => {
    const { roleId, secretId } = server.createAppRole('hdr', { policies: [] });
    const res = await vaultCall(server.url, 'POST', 'auth/approle/login', {
      token: 'hvs.garbage',
      body: { role_id: roleId, secret_id: secretId },
    });
    assert.equal(res.status, 200);
  });

  it('renews an AppRole token by the role’s TTL and stops at token_max_ttl', async () => {
    const { roleId, secretId } = server.createAppRole('short', {
      policies: [],
      tokenTtlSeconds: 300,
      tokenMaxTtlSeconds: 500,
    });
    const token = String(auth(await login({ role_id: roleId, secret_id: secretId }))['client_token']);
    server.advanceClock(250);
    assert.equal(auth(await renew(token))['lease_duration'], 250);
    server.advanceClock(250);
    assert.equal((await lookup(token)).status, 403);
  });
});
