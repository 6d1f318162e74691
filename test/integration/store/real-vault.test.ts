/**
 * The TokenStore contract against a real Vault, when one is offered: set VAULT_ADDR and VAULT_TOKEN
 * (e.g. `vault server -dev`, which enables KV v2 at secret/), and VAULT_CACERT for a private CA.
 * Each run works under its own host id in secret/vfbroker-test/ and deletes what it wrote.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VaultStore } from '../../../src/broker/store/vault-store.js';
import { defineTokenStoreContract, type TokenStoreFixture } from '../../contract/token-store.contract.js';
import { kvAccess, vaultFetch } from './vault-world.js';

const address = process.env['VAULT_ADDR'];
const token = process.env['VAULT_TOKEN'];
const caFile = process.env['VAULT_CACERT'];

async function realVaultFixture(): Promise<TokenStoreFixture> {
  if (!address || !token)
    throw new Error('unreachable: the suite is skipped without VAULT_ADDR and VAULT_TOKEN');
  const dir = await mkdtemp(join(tmpdir(), 'vfb-real-vault-'));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, token, { mode: 0o600 });
  const hostId = `contract-${randomBytes(4).toString('hex')}`;
  const folder = `vfbroker-test/${hostId}/pf`;
  const request = (method: string, path: string, body?: unknown) =>
    vaultFetch(address, token, method, path, body);
  return {
    open: (logger) =>
      VaultStore.open(
        {
          address,
          ...(caFile ? { caFile } : {}),
          auth: { tokenFile },
          mount: 'secret',
          prefix: 'vfbroker-test',
          requestTimeoutMs: 5000,
          hostId,
        },
        { logger },
      ),
    ...kvAccess(request, (pf) => `secret/data/${folder}/${pf}`),
    secrets: [token],
    async dispose() {
      const listed = await request('LIST', `secret/metadata/${folder}`);
      const keys = (listed.body as { data?: { keys?: string[] } } | null)?.data?.keys ?? [];
      for (const key of keys) await request('DELETE', `secret/metadata/${folder}/${key}`);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

defineTokenStoreContract(
  'VaultStore on a real Vault',
  realVaultFixture,
  address && token
    ? {}
    : {
        skip: 'set VAULT_ADDR and VAULT_TOKEN (e.g. for `vault server -dev`) to run the contract against a real Vault',
      },
);
