/**
 * sys/health, sealing, response wrapping, injected faults and the request log of the Vault API
 * test server, over HTTP.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, afterEach, before, describe, it } from 'node:test';
import { assertNoSecretsIn } from '../../support/log-capture.js';
import { vaultCall, type VaultCallResult } from '../../support/vault/call.js';
import { startVaultTestServer, type VaultTestServer } from '../../support/vault/server.js';

let server: VaultTestServer;

const root = (
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
): Promise<VaultCallResult> =>
  vaultCall(server.url, method, path, {
    token: server.rootToken,
    ...(body === undefined ? {} : { body }),
    ...(headers === undefined ? {} : { headers }),
  });

before(async () => {
  server = await startVaultTestServer();
  await root('POST', 'secret/data/sys/a', { data: { v: 1 } });
});
after(async () => {
  await server.close();
});
afterEach(() => {
  server.clearFaults();
  server.unseal();
});

describe('vault test server: health and sealing', () => {
  it('reports an active, unsealed server with 200 and no token needed', async () => {
    const res = await vaultCall(server.url, 'GET', 'sys/health');
    assert.equal(res.status, 200);
    const body = res.json as Record<string, unknown>;
    assert.deepEqual([body['initialized'], body['sealed'], body['standby']], [true, false, false]);
  });

  it('answers 503 everywhere but sys/health once sealed, and recovers when unsealed', async () => {
    server.seal();
    const health = await vaultCall(server.url, 'GET', 'sys/health');
    assert.equal(health.status, 503);
    assert.equal((health.json as { sealed: boolean }).sealed, true);
    for (const [method, path] of [
      ['GET', 'secret/data/sys/a'],
      ['GET', 'auth/token/lookup-self'],
      ['POST', 'auth/approle/login'],
      ['GET', 'nomount/x'],
    ] as const) {
      const res = await root(method, path);
      assert.deepEqual([path, res.status, res.json], [path, 503, { errors: ['Vault is sealed'] }]);
    }
    server.unseal();
    assert.equal((await root('GET', 'secret/data/sys/a')).status, 200);
  });

  it('honours ?sealedcode= and ?activecode=', async () => {
    assert.equal((await vaultCall(server.url, 'GET', 'sys/health?activecode=204')).status, 204);
    server.seal();
    assert.equal((await vaultCall(server.url, 'GET', 'sys/health?sealedcode=200')).status, 200);
  });
});

describe('vault test server: response wrapping', () => {
  it('wraps a read behind a single-use token', async () => {
    const wrapped = await root('GET', 'secret/data/sys/a', undefined, { 'X-Vault-Wrap-TTL': '60s' });
    assert.equal(wrapped.status, 200);
    const body = wrapped.json as { data: unknown; wrap_info: Record<string, unknown> };
    assert.equal(body.data, null);
    assert.equal(body.wrap_info['ttl'], 60);
    assert.equal(body.wrap_info['creation_path'], 'secret/data/sys/a');
    const wrapToken = String(body.wrap_info['token']);

    const unwrapped = await vaultCall(server.url, 'POST', 'sys/wrapping/unwrap', { token: wrapToken });
    assert.equal(unwrapped.status, 200);
    assert.deepEqual((unwrapped.json as { data: { data: unknown } }).data.data, { v: 1 });

    const again = await vaultCall(server.url, 'POST', 'sys/wrapping/unwrap', { token: wrapToken });
    assert.deepEqual(
      [again.status, again.json],
      [400, { errors: ['wrapping token is not valid or does not exist'] }],
    );
  });

  it('unwraps with the wrapping token in the body, and lets the wrapping token expire', async () => {
    const { roleId, secretId } = server.createAppRole('wrapped', { policies: [] });
    const wrapped = await vaultCall(server.url, 'POST', 'auth/approle/login', {
      body: { role_id: roleId, secret_id: secretId },
      headers: { 'X-Vault-Wrap-TTL': '30' },
    });
    const info = (wrapped.json as { wrap_info: Record<string, unknown> }).wrap_info;
    const reader = server.createToken({ policies: [] });
    const res = await vaultCall(server.url, 'POST', 'sys/wrapping/unwrap', {
      token: reader,
      body: { token: info['token'] },
    });
    const auth = (res.json as { auth: Record<string, unknown> }).auth;
    assert.equal(info['wrapped_accessor'], auth['accessor']);
    assert.equal(
      (await vaultCall(server.url, 'GET', 'auth/token/lookup-self', { token: String(auth['client_token']) }))
        .status,
      200,
    );

    const late = await root('GET', 'secret/data/sys/a', undefined, { 'X-Vault-Wrap-TTL': '30' });
    server.advanceClock(30);
    const expired = await vaultCall(server.url, 'POST', 'sys/wrapping/unwrap', {
      token: String((late.json as { wrap_info: Record<string, unknown> }).wrap_info['token']),
    });
    assert.equal(expired.status, 400);
  });
});

describe('vault test server: injected faults', () => {
  it('status: answers {"errors":[...]} with the status, for the matching requests only, and leaves state alone', async () => {
    server.addFault({
      kind: 'status',
      status: 500,
      match: { method: 'post', pathPrefix: 'secret/data/sys/' },
    });
    const write = await root('POST', 'secret/data/sys/a', { data: { v: 99 } });
    assert.deepEqual([write.status, write.json], [500, { errors: ['internal error'] }]);
    const read = await root('GET', 'secret/data/sys/a');
    assert.deepEqual((read.json as { data: { data: unknown } }).data.data, { v: 1 });
    assert.equal((await root('POST', 'secret/data/other', { data: { v: 1 } })).status, 200);
  });

  it('times: hits that many matching requests, then is gone', async () => {
    server.addFault({ kind: 'status', status: 503, times: 2, match: { pathPrefix: '/v1/sys/health' } });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await vaultCall(server.url, 'GET', 'sys/health')).status);
    assert.deepEqual(statuses, [503, 503, 200]);
  });

  it('drop: closes the connection without an answer and applies nothing', async () => {
    server.addFault({ kind: 'drop', times: 1 });
    await assert.rejects(root('POST', 'secret/data/sys/dropped', { data: { v: 1 } }), TypeError);
    assert.equal((await root('GET', 'secret/data/sys/dropped')).status, 404);
  });

  it('truncate: applies the request, then cuts the announced body in half', async () => {
    server.addFault({ kind: 'truncate', times: 1 });
    const res = await fetch(`${server.url}/v1/secret/data/sys/truncated`, {
      method: 'POST',
      headers: { 'X-Vault-Token': server.rootToken, 'Content-Type': 'application/json' },
      body: JSON.stringify({ data: { v: 1 } }),
    });
    assert.equal(res.status, 200);
    const announced = Number(res.headers.get('content-length'));
    assert.ok(announced > 0);
    await assert.rejects(res.text(), TypeError);
    assert.equal((await root('GET', 'secret/data/sys/truncated')).status, 200);
  });

  it('latency: answers normally after the delay', async () => {
    server.addFault({ kind: 'latency', latencyMs: 5, times: 1 });
    const res = await root('GET', 'secret/data/sys/a');
    assert.equal(res.status, 200);
    assert.deepEqual((res.json as { data: { data: unknown } }).data.data, { v: 1 });
  });

  it('latency: close() does not wait for a delayed answer', { timeout: 10_000 }, async () => {
    const slow = await startVaultTestServer();
    slow.addFault({ kind: 'latency', latencyMs: 600_000 });
    const pending = fetch(`${slow.url}/v1/sys/health`);
    await slow.close();
    await assert.rejects(pending, TypeError);
  });

  it('rejects a fault it cannot apply', () => {
    assert.throws(() => server.addFault({ kind: 'status' }), TypeError);
    assert.throws(() => server.addFault({ kind: 'latency' }), TypeError);
    assert.throws(() => server.addFault({ kind: 'drop', times: 0 }), TypeError);
  });
});

describe('vault test server: request log and the LIST method', () => {
  it('records method, path and status of each request, and never a token or a body', async () => {
    server.resetRequestLog();
    const secret = 'f1d2c3b4-0000-4000-8000-123456789abc';
    await root('POST', 'secret/data/sys/logged', { data: { token: secret } });
    await root('GET', 'secret/data/sys/logged?version=1');
    await root('LIST', 'secret/metadata/sys');
    server.addFault({ kind: 'drop', times: 1 });
    await assert.rejects(root('GET', 'sys/health'));
    assert.deepEqual(server.requests, [
      { method: 'POST', path: '/v1/secret/data/sys/logged', status: 200 },
      { method: 'GET', path: '/v1/secret/data/sys/logged', status: 200 },
      { method: 'LIST', path: '/v1/secret/metadata/sys', status: 200 },
      { method: 'GET', path: '/v1/sys/health', status: 0 },
    ]);
    assertNoSecretsIn(JSON.stringify(server.requests), [secret, server.rootToken], 'the request log');
    server.resetRequestLog();
    assert.deepEqual(server.requests, []);
  });

  it('serves LIST over a kept-alive connection between other requests', async () => {
    const agentless = (method: string, path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = request(
          `${server.url}/v1/${path}`,
          { method, headers: { 'X-Vault-Token': server.rootToken } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const statuses = [];
    for (const method of ['LIST', 'GET', 'LIST', 'LIST', 'GET']) {
      statuses.push(await agentless(method, method === 'LIST' ? 'secret/metadata/sys' : 'secret/data/sys/a'));
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
  });
});
