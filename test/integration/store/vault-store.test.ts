/**
 * VaultStore against the Vault API test server: the TokenStore contract, then Vault's failure modes —
 * down, sealed, slow, 403, 500, dropped and truncated answers, records deleted by hand, a removal cut
 * short — each a typed one-line error, nothing half-written, no token in any log line or error.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { VaultStore } from '../../../src/broker/store/vault-store.js';
import type { TokenStore } from '../../../src/broker/store/token-store.js';
import type { ErrorCode, VfbError } from '../../../src/errors.js';
import { parsePciAddress } from '../../../src/pci/address.js';
import { defineTokenStoreContract, expectStoreError } from '../../contract/token-store.contract.js';
import { captureLogs, type CapturedLogs } from '../../support/log-capture.js';
import { startVaultTestServer } from '../../support/vault/server.js';
import { startVaultWorld, vaultStoreFixture, type VaultWorld } from './vault-world.js';

defineTokenStoreContract('VaultStore on the Vault API test server', async () =>
  vaultStoreFixture(await startVaultWorld(), 'contract-host'),
);

describe('VaultStore when Vault misbehaves', () => {
  let world: VaultWorld;
  let logs: CapturedLogs;
  let store: TokenStore;
  const secrets: string[] = [];
  let nextBus = 0x40;
  const freshPf = () => parsePciAddress(`0000:${(nextBus++).toString(16)}:00.0`);
  const rejection = (p: Promise<unknown>, code: ErrorCode, message?: RegExp | string): Promise<VfbError> =>
    expectStoreError(p, code, secrets, message);
  const dataPath = (pf: string) => `secret/data/vfbroker/faulty-host/pf/${pf}`;
  let subject: string;

  const created = async () => {
    const pf = freshPf();
    const tokens = await store.create(pf);
    secrets.push(tokens.active.token);
    return tokens;
  };

  before(async () => {
    world = await startVaultWorld();
    secrets.push(...world.secrets);
    logs = captureLogs();
    store = await VaultStore.open(world.options('faulty-host', { requestTimeoutMs: 300 }), {
      logger: logs.logger,
    });
    subject = `Vault at ${world.server.url}`;
  });
  afterEach(() => {
    world.server.clearFaults();
    world.server.unseal();
    logs.assertNoSecrets(secrets);
  });
  after(async () => {
    await store.close();
    await world.dispose();
  });

  it('reports a sealed Vault as SEALED, and works again once unsealed', async () => {
    const t = await created();
    world.server.seal();
    await rejection(
      store.read(t.pf),
      'SEALED',
      `${subject}: cannot read ${dataPath(t.pf)}: Vault is sealed (HTTP 503)`,
    );
    await rejection(store.writePending(t.pf, t.revision), 'SEALED');
    world.server.unseal();
    assert.deepEqual(await store.read(t.pf), t);
  });

  it('gives up on a slow Vault after requestTimeoutMs with TIMEOUT', async () => {
    const t = await created();
    world.server.addFault({ kind: 'latency', latencyMs: 3000, match: { pathPrefix: dataPath(t.pf) } });
    await rejection(
      store.read(t.pf),
      'TIMEOUT',
      `${subject}: cannot read ${dataPath(t.pf)}: no answer within 300 ms`,
    );
    world.server.clearFaults();
    assert.deepEqual(await store.read(t.pf), t);
  });

  it('reports an HTTP 500 as UNAVAILABLE with Vault’s own words', async () => {
    const t = await created();
    world.server.addFault({ kind: 'status', status: 500, match: { pathPrefix: dataPath(t.pf) } });
    const err = await rejection(
      store.read(t.pf),
      'UNAVAILABLE',
      `${subject}: cannot read ${dataPath(t.pf)}: internal error (HTTP 500)`,
    );
    assert.deepEqual(err.details, { status: 500, vaultErrors: 'internal error' });
  });

  it('reports a dropped connection as UNAVAILABLE', async () => {
    const t = await created();
    world.server.addFault({ kind: 'drop', times: 1, match: { pathPrefix: dataPath(t.pf) } });
    await rejection(
      store.read(t.pf),
      'UNAVAILABLE',
      /^Vault at .*: cannot read .*: connection failed \(E[A-Z_]+\)$/,
    );
  });

  it('reports a truncated answer as UNAVAILABLE, and a cut-off write leaves a whole record', async () => {
    const t = await created();
    world.server.addFault({
      kind: 'truncate',
      times: 1,
      match: { method: 'GET', pathPrefix: dataPath(t.pf) },
    });
    await rejection(
      store.read(t.pf),
      'UNAVAILABLE',
      /cannot read .*: (connection failed|the answer was cut off) \(E[A-Z_]+\)$/,
    );
    world.server.addFault({
      kind: 'truncate',
      times: 1,
      match: { method: 'POST', pathPrefix: dataPath(t.pf) },
    });
    await rejection(store.writePending(t.pf, t.revision), 'UNAVAILABLE');
    // Vault applied the write before the answer was cut: the record is the new one, complete.
    const after = await store.read(t.pf);
    assert.equal(after.revision, t.revision + 1);
    assert.deepEqual(after.active, t.active);
    assert.equal(after.pending?.generation, 2);
    secrets.push(after.pending.token);
  });

  it('reports a policy refusal as DENIED, without giving up the token', async () => {
    const pf = freshPf();
    const outsider = world.server.createToken({ policies: ['default'], ttlSeconds: 3600, renewable: true });
    secrets.push(outsider);
    const tokenFile = await world.secretFile('outsider-token', outsider);
    const denied = await VaultStore.open(world.options('faulty-host', { auth: { tokenFile } }), {
      logger: logs.logger,
    });
    try {
      const err = await rejection(
        denied.read(pf),
        'DENIED',
        `${subject}: cannot read ${dataPath(pf)}: permission denied (HTTP 403)`,
      );
      assert.equal(err.details['status'], 403);
      // The token is alive: the session must not have treated the refusal as an expired token.
      await rejection(denied.read(pf), 'DENIED');
    } finally {
      await denied.close();
    }
  });

  it('reports a record whose latest version was deleted by hand as STORE_CORRUPT, and can remove it', async () => {
    const t = await created();
    assert.equal((await world.root('DELETE', dataPath(t.pf))).status, 204);
    const err = await rejection(store.read(t.pf), 'STORE_CORRUPT', /its latest version is deleted in Vault/);
    assert.equal(err.details['revision'], t.revision);
    await rejection(store.writePending(t.pf, t.revision), 'STORE_CORRUPT');
    await store.remove(t.pf, t.revision);
    await rejection(store.read(t.pf), 'NOT_FOUND');
  });

  it('finishes a removal that was cut short after its tombstone', async () => {
    const t = await created();
    world.server.addFault({ kind: 'status', status: 500, times: 1, match: { method: 'DELETE' } });
    await rejection(store.remove(t.pf, t.revision), 'UNAVAILABLE');
    await rejection(store.read(t.pf), 'NOT_FOUND');
    assert.ok((await store.list()).includes(t.pf));
    await store.remove(t.pf, 0);
    assert.ok(!(await store.list()).includes(t.pf));
    const metadata = await world.root('GET', `secret/metadata/vfbroker/faulty-host/pf/${t.pf}`);
    assert.equal(metadata.status, 404, 'every version, and the tokens in them, must be gone');
    assert.equal((await store.create(t.pf)).active.generation, 1);
  });

  it('keeps tokens out of metadata and key names', async () => {
    const t = await created();
    const metadata = await world.root('GET', `secret/metadata/vfbroker/faulty-host/pf/${t.pf}`);
    assert.equal(metadata.status, 200);
    const listing = await world.root('LIST', 'secret/metadata/vfbroker/faulty-host/pf');
    for (const where of [metadata.body, listing.body]) {
      assert.ok(!JSON.stringify(where).includes(t.active.token));
    }
  });

  it('ignores keys in its folder that are not PCI addresses', async () => {
    const t = await created();
    await world.root('POST', 'secret/data/vfbroker/faulty-host/pf/not-a-pf', { data: { x: 1 } });
    const listed = await store.list();
    assert.ok(listed.includes(t.pf));
    assert.ok(!listed.includes('not-a-pf' as never));
    assert.ok(logs.records().some((r) => r['msg'] === 'ignored Vault keys that are not PCI addresses'));
  });

  it('reports a Vault that is down as UNAVAILABLE, at open and afterwards', async () => {
    const gone = await startVaultTestServer();
    const address = gone.url;
    await gone.close();
    await rejection(
      VaultStore.open(world.options('faulty-host', { address }), { logger: logs.logger }),
      'UNAVAILABLE',
      `Vault at ${address}: cannot look up its own token: connection failed (ECONNREFUSED)`,
    );
  });

  it('reports a server that does not answer like Vault as UNAVAILABLE', async () => {
    const impostor = createServer((_req, res) => res.end('<html>hello</html>'));
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    const address = `http://127.0.0.1:${(impostor.address() as AddressInfo).port}`;
    try {
      await rejection(
        VaultStore.open(world.options('faulty-host', { address }), { logger: logs.logger }),
        'UNAVAILABLE',
        `Vault at ${address}: cannot look up its own token: the reply is not a well-formed Vault answer`,
      );
    } finally {
      impostor.closeAllConnections();
      impostor.close();
    }
  });

  it('refuses paths that would escape its folder', async () => {
    for (const [field, value] of [
      ['mount', 'secret/../sys'],
      ['prefix', '/abs'],
      ['prefix', 'a//b'],
      ['hostId', 'Host_1'],
      ['hostId', '../x'],
    ] as const) {
      await rejection(
        VaultStore.open(world.options('faulty-host', { [field]: value }), { logger: logs.logger }),
        'CONFIG_INVALID',
        /cannot be used in a Vault path$/,
      );
    }
  });
});
