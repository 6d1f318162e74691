/**
 * KV v2 over HTTP against the Vault API test server, each behaviour as
 * developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2 and vault-plugin-secrets-kv define it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { vaultCall, type VaultCallResult } from '../../support/vault/call.js';
import { startVaultTestServer, type VaultTestServer } from '../../support/vault/server.js';

let server: VaultTestServer;
let counter = 0;
/** A key no other test uses. */
const freshKey = (): string => `kvtest/k${++counter}`;

const call = (method: string, path: string, body?: unknown): Promise<VaultCallResult> =>
  vaultCall(server.url, method, path, { token: server.rootToken, ...(body === undefined ? {} : { body }) });

const write = (key: string, data: Record<string, unknown>, cas?: number): Promise<VaultCallResult> =>
  call('POST', `secret/data/${key}`, { ...(cas === undefined ? {} : { options: { cas } }), data });

function field(value: unknown, ...path: string[]): unknown {
  let v = value;
  for (const p of path) v = (v as Record<string, unknown> | null | undefined)?.[p];
  return v;
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

before(async () => {
  server = await startVaultTestServer();
});
after(async () => {
  await server.close();
});

describe('vault test server: KV v2 data', () => {
  it('answers a write and a read with Vault’s envelope and version metadata', async () => {
    const key = freshKey();
    const w = await write(key, { token: 'ab', n: 1 });
    assert.equal(w.status, 200);
    assert.equal(w.headers.get('content-type'), 'application/json');
    const wj = w.json as Record<string, unknown>;
    assert.deepEqual(Object.keys(wj), [
      'request_id',
      'lease_id',
      'renewable',
      'lease_duration',
      'data',
      'wrap_info',
      'warnings',
      'auth',
      'mount_type',
    ]);
    assert.match(String(wj['request_id']), /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { ...wj, request_id: '' },
      {
        request_id: '',
        lease_id: '',
        renewable: false,
        lease_duration: 0,
        data: {
          created_time: field(wj, 'data', 'created_time'),
          custom_metadata: null,
          deletion_time: '',
          destroyed: false,
          version: 1,
        },
        wrap_info: null,
        warnings: null,
        auth: null,
        mount_type: 'kv',
      },
    );
    assert.match(String(field(wj, 'data', 'created_time')), ISO);

    const r = await call('GET', `secret/data/${key}`);
    assert.equal(r.status, 200);
    assert.deepEqual(field(r.json, 'data'), {
      data: { token: 'ab', n: 1 },
      metadata: {
        created_time: field(wj, 'data', 'created_time'),
        custom_metadata: null,
        deletion_time: '',
        destroyed: false,
        version: 1,
      },
    });
  });

  it('counts versions up and reads an older one with ?version=N', async () => {
    const key = freshKey();
    for (let i = 1; i <= 3; i++) assert.equal(field((await write(key, { v: i })).json, 'data', 'version'), i);
    assert.deepEqual(field((await call('GET', `secret/data/${key}`)).json, 'data', 'data'), { v: 3 });
    assert.deepEqual(field((await call('GET', `secret/data/${key}?version=2`)).json, 'data', 'data'), {
      v: 2,
    });
    assert.deepEqual(field((await call('GET', `secret/data/${key}?version=0`)).json, 'data', 'data'), {
      v: 3,
    });
    const future = await call('GET', `secret/data/${key}?version=9`);
    assert.equal(future.status, 404);
    assert.deepEqual(future.json, { errors: [] });
  });

  it('accepts PUT like POST', async () => {
    const key = freshKey();
    const res = await call('PUT', `secret/data/${key}`, { data: { a: 'b' } });
    assert.equal(res.status, 200);
    assert.equal(field(res.json, 'data', 'version'), 1);
  });

  it('answers a missing key with 404 and an empty error list', async () => {
    const res = await call('GET', `secret/data/${freshKey()}`);
    assert.equal(res.status, 404);
    assert.equal(res.text, '{"errors":[]}\n');
  });

  it('refuses a write without data', async () => {
    const res = await call('POST', `secret/data/${freshKey()}`, { options: { cas: 0 } });
    assert.equal(res.status, 400);
    assert.deepEqual(res.json, { errors: ['no data provided'] });
  });
});

describe('vault test server: KV v2 check-and-set', () => {
  const MISMATCH = { errors: ['check-and-set parameter did not match the current version'] };

  it('cas:0 creates only when the key does not exist', async () => {
    const key = freshKey();
    assert.equal((await write(key, { a: 1 }, 0)).status, 200);
    const again = await write(key, { a: 2 }, 0);
    assert.equal(again.status, 400);
    assert.deepEqual(again.json, MISMATCH);
    assert.deepEqual(field((await call('GET', `secret/data/${key}`)).json, 'data', 'data'), { a: 1 });
  });

  it('cas:N succeeds only against the current version', async () => {
    const key = freshKey();
    await write(key, { a: 1 }, 0);
    assert.deepEqual((await write(key, { a: 2 }, 2)).json, MISMATCH);
    assert.equal(field((await write(key, { a: 2 }, 1)).json, 'data', 'version'), 2);
    assert.deepEqual((await write(key, { a: 3 }, 1)).json, MISMATCH);
  });

  it('lets exactly one of many concurrent create-only writers win', async () => {
    const key = freshKey();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => write(key, { writer: i }, 0)));
    const winners = results.filter((r) => r.status === 200);
    assert.equal(winners.length, 1);
    for (const r of results.filter((x) => x.status !== 200)) {
      assert.equal(r.status, 400);
      assert.deepEqual(r.json, MISMATCH);
    }
    const stored = field((await call('GET', `secret/data/${key}`)).json, 'data', 'data', 'writer');
    assert.equal(stored, results.indexOf(winners[0] as VaultCallResult));
  });

  it('lets exactly one of many concurrent updaters of the same version win', async () => {
    const key = freshKey();
    await write(key, { gen: 0 }, 0);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => write(key, { gen: i + 1 }, 1)));
    assert.equal(results.filter((r) => r.status === 200).length, 1);
    assert.equal(field((await call('GET', `secret/data/${key}`)).json, 'data', 'metadata', 'version'), 2);
  });

  it('refuses an unparsable cas', async () => {
    const res = await call('POST', `secret/data/${freshKey()}`, { options: { cas: 'x' }, data: {} });
    assert.equal(res.status, 400);
    assert.deepEqual(res.json, { errors: ['error parsing check-and-set parameter'] });
  });

  it('requires cas when the key’s metadata says cas_required', async () => {
    const key = freshKey();
    assert.equal((await call('POST', `secret/metadata/${key}`, { cas_required: true })).status, 204);
    const res = await write(key, { a: 1 });
    assert.equal(res.status, 400);
    assert.deepEqual(res.json, { errors: ['check-and-set parameter required for this call'] });
    assert.equal((await write(key, { a: 1 }, 0)).status, 200);
  });

  it('requires cas on every key when the mount config says cas_required', async () => {
    server.enableKv2('casmount');
    assert.equal(
      (await call('POST', 'casmount/config', { cas_required: true, max_versions: 4 })).status,
      204,
    );
    const config = await call('GET', 'casmount/config');
    assert.deepEqual(field(config.json, 'data'), {
      cas_required: true,
      delete_version_after: '0s',
      max_versions: 4,
    });
    const res = await call('POST', 'casmount/data/k', { data: { a: 1 } });
    assert.deepEqual(res.json, { errors: ['check-and-set parameter required for this call'] });
    const warned = await call('POST', 'casmount/metadata/k', { cas_required: false });
    assert.equal(warned.status, 200);
    assert.deepEqual(field(warned.json, 'warnings'), [
      '"cas_required" set to false, but is mandated by backend config. This value will be ignored.',
    ]);
  });
});

describe('vault test server: KV v2 versions, deletes and destroys', () => {
  it('keeps 10 versions by default, trimming the oldest', async () => {
    const key = freshKey();
    for (let i = 1; i <= 12; i++) await write(key, { v: i });
    const meta = field((await call('GET', `secret/metadata/${key}`)).json, 'data') as Record<string, unknown>;
    assert.equal(meta['current_version'], 12);
    assert.equal(meta['oldest_version'], 3);
    assert.deepEqual(
      Object.keys(meta['versions'] as object).sort((a, b) => Number(a) - Number(b)),
      ['3', '4', '5', '6', '7', '8', '9', '10', '11', '12'],
    );
    assert.equal((await call('GET', `secret/data/${key}?version=2`)).status, 404);
    assert.deepEqual(field((await call('GET', `secret/data/${key}?version=3`)).json, 'data', 'data'), {
      v: 3,
    });
  });

  it('trims to the key’s max_versions', async () => {
    const key = freshKey();
    await call('POST', `secret/metadata/${key}`, { max_versions: 2 });
    for (let i = 1; i <= 4; i++) await write(key, { v: i });
    const meta = field((await call('GET', `secret/metadata/${key}`)).json, 'data') as Record<string, unknown>;
    assert.equal(meta['max_versions'], 2);
    assert.equal(meta['oldest_version'], 3);
    assert.deepEqual(Object.keys(meta['versions'] as object).sort(), ['3', '4']);
  });

  it('trims to the mount’s max_versions when the key sets none', async () => {
    server.enableKv2('trimmount');
    await call('POST', 'trimmount/config', { max_versions: 3 });
    for (let i = 1; i <= 5; i++) await call('POST', 'trimmount/data/k', { data: { v: i } });
    const meta = field((await call('GET', 'trimmount/metadata/k')).json, 'data') as Record<string, unknown>;
    assert.deepEqual(Object.keys(meta['versions'] as object).sort(), ['3', '4', '5']);
  });

  it('soft-deletes the latest version: 404 with null data and the version’s metadata', async () => {
    const key = freshKey();
    await write(key, { v: 1 });
    await write(key, { v: 2 });
    assert.equal((await call('DELETE', `secret/data/${key}`)).status, 204);
    const res = await call('GET', `secret/data/${key}`);
    assert.equal(res.status, 404);
    const json = res.json as Record<string, unknown>;
    assert.equal(json['errors'], undefined);
    assert.equal(field(json, 'data', 'data'), null);
    const meta = field(json, 'data', 'metadata') as Record<string, unknown>;
    assert.equal(meta['version'], 2);
    assert.equal(meta['destroyed'], false);
    assert.match(String(meta['deletion_time']), ISO);
    assert.deepEqual(field((await call('GET', `secret/data/${key}?version=1`)).json, 'data', 'data'), {
      v: 1,
    });
    // The key still exists: a create-only write is refused.
    assert.equal((await write(key, { v: 3 }, 0)).status, 400);
  });

  it('deletes and undeletes chosen versions', async () => {
    const key = freshKey();
    for (let i = 1; i <= 3; i++) await write(key, { v: i });
    assert.equal((await call('POST', `secret/delete/${key}`, { versions: [1, 3] })).status, 204);
    assert.equal((await call('GET', `secret/data/${key}?version=1`)).status, 404);
    assert.equal((await call('GET', `secret/data/${key}?version=2`)).status, 200);
    assert.equal((await call('GET', `secret/data/${key}`)).status, 404);
    assert.equal((await call('POST', `secret/undelete/${key}`, { versions: [3] })).status, 204);
    const res = await call('GET', `secret/data/${key}`);
    assert.equal(res.status, 200);
    assert.equal(field(res.json, 'data', 'metadata', 'deletion_time'), '');
    const empty = await call('POST', `secret/delete/${key}`, { versions: [] });
    assert.deepEqual([empty.status, empty.json], [400, { errors: ['No version number provided'] }]);
  });

  it('destroys versions for good: 404 with destroyed true, and undelete cannot bring them back', async () => {
    const key = freshKey();
    await write(key, { v: 1 });
    await write(key, { v: 2 });
    assert.equal((await call('PUT', `secret/destroy/${key}`, { versions: [2] })).status, 204);
    await call('POST', `secret/undelete/${key}`, { versions: [2] });
    const res = await call('GET', `secret/data/${key}`);
    assert.equal(res.status, 404);
    assert.equal(field(res.json, 'data', 'data'), null);
    assert.equal(field(res.json, 'data', 'metadata', 'destroyed'), true);
    assert.equal(field(res.json, 'data', 'metadata', 'version'), 2);
    const empty = await call('PUT', `secret/destroy/${key}`, {});
    assert.deepEqual([empty.status, empty.json], [400, { errors: ['no version number provided'] }]);
  });
});

describe('vault test server: KV v2 metadata and listing', () => {
  it('reads metadata the way Vault shows it', async () => {
    const key = freshKey();
    await write(key, { v: 1 });
    await call('POST', `secret/metadata/${key}`, {
      custom_metadata: { owner: 'vfbroker' },
      delete_version_after: '1h',
    });
    const data = field((await call('GET', `secret/metadata/${key}`)).json, 'data') as Record<string, unknown>;
    assert.deepEqual(Object.keys(data), [
      'cas_required',
      'created_time',
      'current_version',
      'custom_metadata',
      'delete_version_after',
      'max_versions',
      'oldest_version',
      'updated_time',
      'versions',
    ]);
    assert.equal(data['current_version'], 1);
    assert.equal(data['oldest_version'], 0);
    assert.equal(data['max_versions'], 0);
    assert.equal(data['delete_version_after'], '3600s');
    assert.deepEqual(data['custom_metadata'], { owner: 'vfbroker' });
    assert.deepEqual(
      field((await call('GET', `secret/data/${key}`)).json, 'data', 'metadata', 'custom_metadata'),
      {
        owner: 'vfbroker',
      },
    );
  });

  it('enforces custom_metadata limits with Vault’s messages', async () => {
    const key = freshKey();
    const tooMany = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    const many = await call('POST', `secret/metadata/${key}`, { custom_metadata: tooMany });
    assert.equal(many.status, 400);
    assert.deepEqual(many.json, {
      errors: [
        '1 error occurred:\n\t* custom_metadata validation failed: payload must contain at most 64 keys, provided 65\n\n',
      ],
    });
    const longKey = 'k'.repeat(129);
    const bad = await call('POST', `secret/metadata/${key}`, {
      custom_metadata: { [longKey]: 'v'.repeat(513) },
    });
    assert.deepEqual(bad.json, {
      errors: [
        '2 errors occurred:\n' +
          `\t* custom_metadata validation failed: length of key "${longKey}" is 129 but must be 0 < len(key) <= 128\n` +
          `\t* custom_metadata validation failed: length of value for key "${longKey}" is 513 but must be 0 < len(value) <= 512\n\n`,
      ],
    });
    const ok = await call('POST', `secret/metadata/${key}`, {
      custom_metadata: { ['k'.repeat(128)]: 'v'.repeat(512) },
    });
    assert.equal(ok.status, 204);
  });

  it('creates metadata without versions; reading its data is a plain 404', async () => {
    const key = freshKey();
    await call('POST', `secret/metadata/${key}`, { max_versions: 5 });
    const res = await call('GET', `secret/data/${key}`);
    assert.deepEqual([res.status, res.json], [404, { errors: [] }]);
    assert.equal(field((await write(key, { a: 1 }, 0)).json, 'data', 'version'), 1);
  });

  it('deletes every version and the metadata', async () => {
    const key = freshKey();
    await write(key, { a: 1 });
    assert.equal((await call('DELETE', `secret/metadata/${key}`)).status, 204);
    assert.deepEqual((await call('GET', `secret/metadata/${key}`)).json, { errors: [] });
    assert.equal(field((await write(key, { a: 1 }, 0)).json, 'data', 'version'), 1);
  });

  it('lists one folder level with the LIST method and with GET ?list=true', async () => {
    server.enableKv2('listmount');
    for (const k of ['pf/0000:3b:00.0', 'pf/0000:3b:00.1', 'pf/deep/x', 'other']) {
      await call('POST', `listmount/data/vfbroker/h1/${k}`, { data: { a: 1 } });
    }
    const viaList = await call('LIST', 'listmount/metadata/vfbroker/h1/pf');
    assert.equal(viaList.status, 200);
    assert.deepEqual(field(viaList.json, 'data'), { keys: ['0000:3b:00.0', '0000:3b:00.1', 'deep/'] });
    const viaGet = await call('GET', 'listmount/metadata/vfbroker/h1/?list=true');
    assert.deepEqual(field(viaGet.json, 'data'), { keys: ['other', 'pf/'] });
    assert.deepEqual(field((await call('LIST', 'listmount/metadata/')).json, 'data'), {
      keys: ['vfbroker/'],
    });
    const empty = await call('LIST', 'listmount/metadata/nothing');
    assert.deepEqual([empty.status, empty.json], [404, { errors: [] }]);
  });

  it('keeps mounts apart', async () => {
    server.enableKv2('team/kv');
    await call('POST', 'team/kv/data/a', { data: { m: 'team' } });
    assert.equal((await call('GET', 'secret/data/a')).status, 404);
    assert.deepEqual(field((await call('GET', 'team/kv/data/a')).json, 'data', 'data'), { m: 'team' });
    assert.throws(() => server.enableKv2('team/kv'), /path is already in use at team\/kv\//);
  });
});

describe('vault test server: KV v2 paths and operations it does not have', () => {
  it('answers a v1-style path with 404 and Vault’s warning', async () => {
    const res = await call('GET', 'secret/plain');
    assert.equal(res.status, 404);
    assert.equal(field(res.json, 'data'), null);
    assert.deepEqual(field(res.json, 'warnings'), [
      "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.",
    ]);
  });

  it('answers an operation the path lacks with 405', async () => {
    const res = await call('DELETE', 'secret/config');
    assert.deepEqual(
      [res.status, res.json],
      [405, { errors: ['1 error occurred:\n\t* unsupported operation\n\n'] }],
    );
    // A list path always ends in "/", which data/ never matches: the catch-all answers.
    const list = await call('LIST', 'secret/data/x');
    assert.equal(list.status, 404);
    assert.match(String(field(list.json, 'warnings')), /use 'vault kv list' for this operation/);
  });

  it('answers a path under no mount with 404 naming the route', async () => {
    const res = await call('GET', 'nomount/data/x');
    assert.deepEqual(
      [res.status, res.json],
      [404, { errors: ['no handler for route "nomount/data/x". route entry not found.'] }],
    );
  });

  it('refuses a body that is not JSON', async () => {
    const raw = await fetch(`${server.url}/v1/secret/data/x`, {
      method: 'POST',
      headers: { 'X-Vault-Token': server.rootToken },
      body: '{not json',
    });
    assert.equal(raw.status, 400);
    const body = (await raw.json()) as { errors: string[] };
    assert.match(body.errors[0] ?? '', /^failed to parse JSON input: /);
  });
});
