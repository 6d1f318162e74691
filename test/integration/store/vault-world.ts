/**
 * What the Vault store tests stand on: the Vault API test server with vfbroker's policy, a token and
 * an AppRole for it written to private files, and helpers to reach Vault behind the store's back.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VaultStoreOptions } from '../../../src/broker/store/vault-store.js';
import type { PciAddress } from '../../../src/pci/address.js';
import type { TokenStoreFixture } from '../../contract/token-store.contract.js';
import { startVaultTestServer, type VaultTestServer } from '../../support/vault/server.js';
import { VaultStore } from '../../../src/broker/store/vault-store.js';

/** The policy docs/decisions/0003-token-store-layout.md gives operators. */
export const BROKER_POLICY = `
path "secret/data/vfbroker/+/pf/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/vfbroker/+/pf/*" {
  capabilities = ["list", "delete"]
}
`;

export interface VaultWorld {
  readonly server: VaultTestServer;
  readonly dir: string;
  /** A private file holding a token with BROKER_POLICY (TTL 1 h, renewable). */
  readonly tokenFile: string;
  /** Every credential handed out, for the no-secret-in-logs checks. */
  readonly secrets: string[];
  /** Store options for `hostId`, with overrides. */
  options(hostId: string, overrides?: Partial<VaultStoreOptions>): VaultStoreOptions;
  /** Writes a private (0600) file in the world's directory and returns its path. */
  secretFile(name: string, content: string, mode?: number): Promise<string>;
  /** A request with the root token, behind the store's back. */
  root(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  dispose(): Promise<void>;
}

export async function startVaultWorld(): Promise<VaultWorld> {
  const server = await startVaultTestServer();
  server.writePolicy('vfbroker', BROKER_POLICY);
  const dir = await mkdtemp(join(tmpdir(), 'vfb-vault-'));
  const token = server.createToken({ policies: ['vfbroker'], ttlSeconds: 3600, renewable: true });
  const secrets = [token, server.rootToken];
  const secretFile = async (name: string, content: string, mode = 0o600): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, content, { mode });
    await chmod(path, mode);
    return path;
  };
  const tokenFile = await secretFile('token', `${token}\n`);
  return {
    server,
    dir,
    tokenFile,
    secrets,
    options: (hostId, overrides = {}) => ({
      address: server.url,
      auth: { tokenFile },
      mount: 'secret',
      prefix: 'vfbroker',
      requestTimeoutMs: 2000,
      hostId,
      ...overrides,
    }),
    secretFile,
    root: (method, path, body) => vaultFetch(server.url, server.rootToken, method, path, body),
    async dispose() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function vaultFetch(
  address: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${address}/v1/${path}`, {
    method,
    headers: { 'X-Vault-Token': token, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : (JSON.parse(text) as unknown) };
}

/** plant() and raw() for the contract: KV v2 reads and unconditional writes with a privileged token. */
export function kvAccess(
  request: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: unknown }>,
  dataPath: (pf: PciAddress) => string,
): Pick<TokenStoreFixture, 'plant' | 'raw'> {
  return {
    async plant(pf, data) {
      const reply = await request('POST', dataPath(pf), { data });
      if (reply.status !== 200) throw new Error(`plant: HTTP ${reply.status}`);
    },
    async raw(pf) {
      const reply = await request('GET', dataPath(pf));
      return reply.status === 200 ? (reply.body as { data: { data: unknown } }).data.data : null;
    },
  };
}

/** The contract fixture over a running world: each fixture gets its own host id, so suites never collide. */
export function vaultStoreFixture(world: VaultWorld, hostId: string): TokenStoreFixture {
  return {
    open: (logger) => VaultStore.open(world.options(hostId), { logger }),
    ...kvAccess(
      (method, path, body) => world.root(method, path, body),
      (pf) => `secret/data/vfbroker/${hostId}/pf/${pf}`,
    ),
    secrets: world.secrets,
    dispose: () => world.dispose(),
  };
}
