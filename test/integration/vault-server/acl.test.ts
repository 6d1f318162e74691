/**
 * ACL policies enforced over HTTP by the Vault API test server (docs/concepts/policies), with the
 * policy vfbroker's broker is meant to run under.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { vaultCall, type VaultCallResult } from '../../support/vault/call.js';
import { startVaultTestServer, type VaultTestServer } from '../../support/vault/server.js';

let server: VaultTestServer;

const ACL_DENIED = { errors: ['1 error occurred:\n\t* permission denied\n\n'] };

const as =
  (token: string) =>
  (method: string, path: string, body?: unknown): Promise<VaultCallResult> =>
    vaultCall(server.url, method, path, { token, ...(body === undefined ? {} : { body }) });

before(async () => {
  server = await startVaultTestServer();
  server.writePolicy(
    'vfbroker',
    `
    path "secret/data/vfbroker/+/pf/*" { capabilities = ["create", "read", "update", "delete", "list"] }
    path "secret/metadata/vfbroker/+/pf/*" { capabilities = ["list", "read"] }
    `,
  );
  server.writePolicy('create-only', 'path "secret/data/once/*" { capabilities = ["create", "read"] }');
  server.writePolicy('update-only', 'path "secret/data/upd/*" { capabilities = ["update", "read"] }');
});
after(async () => {
  await server.close();
});

describe('vault test server: ACL over HTTP', () => {
  it('lets the broker policy reach any host’s PF keys through + and *, and nothing else', async () => {
    const broker = as(server.createToken({ policies: ['vfbroker'] }));
    const put = await broker('POST', 'secret/data/vfbroker/h1/pf/0000:3b:00.0', {
      options: { cas: 0 },
      data: { t: 'x' },
    });
    assert.equal(put.status, 200);
    assert.equal((await broker('GET', 'secret/data/vfbroker/h1/pf/0000:3b:00.0')).status, 200);
    assert.equal(
      (await broker('POST', 'secret/data/vfbroker/h2/pf/0000:5e:00.0', { data: { t: 'y' } })).status,
      200,
    );
    for (const [method, path] of [
      ['GET', 'secret/data/vfbroker/h1/vf/0000:3b:02.1'],
      ['GET', 'secret/data/vfbroker/h1/extra/pf/0000:3b:00.0'],
      ['GET', 'secret/data/other'],
      ['POST', 'secret/metadata/vfbroker/h1/pf/0000:3b:00.0'],
      ['DELETE', 'secret/metadata/vfbroker/h1/pf/0000:3b:00.0'],
      ['GET', 'secret/config'],
    ] as const) {
      const res = await broker(method, path, method === 'POST' ? { max_versions: 1 } : undefined);
      assert.deepEqual([method, path, res.status, res.json], [method, path, 403, ACL_DENIED]);
    }
  });

  it('needs list on the metadata path to list, and does not filter the keys it shows', async () => {
    const root = as(server.rootToken);
    await root('POST', 'secret/data/vfbroker/h3/pf/0000:3b:00.0', { data: { t: 'x' } });
    await root('POST', 'secret/data/vfbroker/h3/pf/0000:3b:00.1', { data: { t: 'x' } });
    const broker = as(server.createToken({ policies: ['vfbroker'] }));
    const listed = await broker('LIST', 'secret/metadata/vfbroker/h3/pf');
    assert.equal(listed.status, 200);
    assert.deepEqual((listed.json as { data: unknown }).data, { keys: ['0000:3b:00.0', '0000:3b:00.1'] });
    assert.deepEqual((await broker('LIST', 'secret/metadata/vfbroker/')).json, ACL_DENIED);
    assert.deepEqual((await broker('LIST', 'secret/data/vfbroker/h3/pf')).status, 404);
  });

  it('decides create or update by whether the key exists', async () => {
    const createOnly = as(server.createToken({ policies: ['create-only'] }));
    assert.equal((await createOnly('POST', 'secret/data/once/a', { data: { v: 1 } })).status, 200);
    assert.deepEqual((await createOnly('POST', 'secret/data/once/a', { data: { v: 2 } })).json, ACL_DENIED);

    const updateOnly = as(server.createToken({ policies: ['update-only'] }));
    assert.deepEqual((await updateOnly('POST', 'secret/data/upd/a', { data: { v: 1 } })).json, ACL_DENIED);
    await as(server.rootToken)('POST', 'secret/data/upd/a', { data: { v: 1 } });
    assert.equal((await updateOnly('POST', 'secret/data/upd/a', { data: { v: 2 } })).status, 200);
  });

  it('answers the ACL check before the path is known to exist', async () => {
    const nobody = as(server.createToken({ policies: [] }));
    assert.deepEqual((await nobody('GET', 'nomount/x')).json, ACL_DENIED);
    assert.deepEqual((await nobody('GET', 'secret/data/vfbroker/h1/pf/0000:3b:00.0')).json, ACL_DENIED);
  });

  it('grants every token the default policy’s self-service paths', async () => {
    const nobody = as(server.createToken({ policies: [] }));
    assert.equal((await nobody('GET', 'auth/token/lookup-self')).status, 200);
    assert.equal((await nobody('POST', 'auth/token/renew-self')).status, 200);
  });

  it('applies a policy written after the token was issued', async () => {
    const token = server.createToken({ policies: ['late'] });
    assert.deepEqual((await as(token)('GET', 'secret/data/late')).json, ACL_DENIED);
    server.writePolicy('late', 'path "secret/data/late" { capabilities = ["read"] }');
    assert.equal((await as(token)('GET', 'secret/data/late')).status, 404);
  });
});
