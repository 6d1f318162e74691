/**
 * openStore: broker.yaml's resolved `store` section, as the config loader hands it over, opens a
 * working store of the right kind.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../../src/broker/store/open.js';
import type { TokenStore } from '../../../src/broker/store/token-store.js';
import type { BrokerConfig } from '../../../src/config/broker-config.js';
import { parsePciAddress } from '../../../src/pci/address.js';
import { captureLogs } from '../../support/log-capture.js';
import { startVaultWorld, type VaultWorld } from './vault-world.js';

describe('openStore', () => {
  let world: VaultWorld;
  const pf = parsePciAddress('0000:3b:00.0');
  const logs = captureLogs();

  before(async () => {
    world = await startVaultWorld();
  });
  after(() => world.dispose());

  /** Creates a PF's record, reads it back, closes the store; returns where it said it lives. */
  const roundTrip = async (store: TokenStore): Promise<string> => {
    try {
      const created = await store.create(pf);
      assert.deepEqual(await store.read(pf), created);
      return store.description;
    } finally {
      await store.close();
    }
  };

  it('opens a file store in the configured directory', async () => {
    const root = await mkdtemp(join(tmpdir(), 'vfb-open-'));
    try {
      const directory = join(root, 'tokens');
      const config: Pick<BrokerConfig, 'store' | 'hostId'> = {
        hostId: 'h1',
        store: { type: 'file', directory },
      };
      assert.equal(await roundTrip(await openStore(config, logs.logger)), `file store ${directory}`);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('opens a Vault store with a token file, under the host id', async () => {
    const config: Pick<BrokerConfig, 'store' | 'hostId'> = {
      hostId: 'node-7',
      store: {
        type: 'vault',
        address: world.server.url,
        caFile: null,
        auth: { method: 'token', tokenFile: world.tokenFile },
        mount: 'secret',
        prefix: 'vfbroker',
        requestTimeoutMs: 2000,
      },
    };
    assert.equal(
      await roundTrip(await openStore(config, logs.logger)),
      `Vault at ${world.server.url}, secret/data/vfbroker/node-7/pf`,
    );
    assert.equal((await world.root('GET', `secret/data/vfbroker/node-7/pf/${pf}`)).status, 200);
  });

  it('opens a Vault store with AppRole at its mount', async () => {
    const { roleId, secretId } = world.server.createAppRole('broker', { policies: ['vfbroker'] });
    const config: Pick<BrokerConfig, 'store' | 'hostId'> = {
      hostId: 'node-8',
      store: {
        type: 'vault',
        address: world.server.url,
        caFile: null,
        auth: {
          method: 'approle',
          roleIdFile: await world.secretFile('role-id', roleId),
          secretIdFile: await world.secretFile('secret-id', secretId),
          mount: 'approle',
        },
        mount: 'secret',
        prefix: 'vfbroker',
        requestTimeoutMs: 2000,
      },
    };
    await roundTrip(await openStore(config, logs.logger));
    assert.ok(world.server.requests.some((r) => r.path === '/v1/auth/approle/login' && r.status === 200));
    logs.assertNoSecrets([...world.secrets, roleId, secretId]);
  });
});
