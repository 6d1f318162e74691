/**
 * VaultStore's side of Vault auth and transport: credential files and their modes, AppRole, renewal
 * with backoff and re-login (driven by a manual clock kept in step with the test server's clock),
 * TLS with a CA file, and an environment full of node-vault's traps that must change nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { TokenStore } from '../../../src/broker/store/token-store.js';
import { VaultStore, type VaultStoreOptions } from '../../../src/broker/store/vault-store.js';
import type { ErrorCode, VfbError } from '../../../src/errors.js';
import { parsePciAddress, type PciAddress } from '../../../src/pci/address.js';
import { expectStoreError } from '../../contract/token-store.contract.js';
import { assertNoSecretsIn, captureLogs, type CapturedLogs } from '../../support/log-capture.js';
import { ManualClock } from './manual-clock.js';
import { TEST_CA_PEM, startTlsProxy } from './tls-proxy.js';
import { startVaultWorld, type VaultWorld } from './vault-world.js';

const run = promisify(execFile);

describe('VaultStore auth and transport', () => {
  let world: VaultWorld;
  let logs: CapturedLogs;
  const secrets: string[] = [];
  const open: TokenStore[] = [];
  let nextBus = 0x80;
  const freshPf = (): PciAddress => parsePciAddress(`0000:${(nextBus++).toString(16)}:00.0`);
  const rejection = (p: Promise<unknown>, code: ErrorCode, message?: RegExp | string): Promise<VfbError> =>
    expectStoreError(p, code, secrets, message);

  const openStore = async (
    overrides: Partial<VaultStoreOptions>,
    clock?: ManualClock,
  ): Promise<VaultStore> => {
    const store = await VaultStore.open(world.options('auth-host', overrides), {
      logger: logs.logger,
      ...(clock ? { clock } : {}),
    });
    open.push(store);
    return store;
  };

  /** Moves the Vault server's clock and ours together. */
  const elapse = async (clock: ManualClock, seconds: number): Promise<void> => {
    world.server.advanceClock(seconds);
    await clock.advance(seconds * 1000);
  };

  const approle = async (name: string, ttl: number, maxTtl?: number) => {
    const { roleId, secretId } = world.server.createAppRole(name, {
      policies: ['vfbroker'],
      tokenTtlSeconds: ttl,
      ...(maxTtl === undefined ? {} : { tokenMaxTtlSeconds: maxTtl }),
    });
    secrets.push(roleId, secretId);
    return {
      approle: {
        roleIdFile: await world.secretFile(`${name}-role-id`, roleId),
        secretIdFile: await world.secretFile(`${name}-secret-id`, `${secretId}\n`),
      },
    };
  };

  const newToken = (ttlSeconds: number, extra: { explicitMaxTtlSeconds?: number } = {}) => {
    const token = world.server.createToken({ policies: ['vfbroker'], ttlSeconds, renewable: true, ...extra });
    secrets.push(token);
    return token;
  };

  /** Statuses Vault answered for KV requests since the last reset. */
  const kvStatuses = () =>
    world.server.requests.filter((r) => r.path.startsWith('/v1/secret/')).map((r) => r.status);

  before(async () => {
    world = await startVaultWorld();
    secrets.push(...world.secrets);
    logs = captureLogs();
  });
  afterEach(async () => {
    world.server.clearFaults();
    world.server.resetRequestLog();
    await Promise.all(open.splice(0).map((s) => s.close()));
    logs.assertNoSecrets(secrets);
  });
  after(() => world.dispose());

  describe('credential files', () => {
    it('refuses a token file readable by group or others', async () => {
      const tokenFile = await world.secretFile('loose-token', newToken(3600), 0o640);
      await rejection(
        openStore({ auth: { tokenFile } }),
        'UNSAFE_FILE',
        `Vault token file ${tokenFile} is open to group or others (mode 0640); run chmod 600 ${tokenFile}`,
      );
    });

    it('refuses an AppRole secret_id file readable by others, and a symlinked one', async () => {
      const auth = await approle('loose', 3600);
      const secretIdFile = auth.approle.secretIdFile;
      await world.secretFile('loose-secret-id', secrets.at(-1)!, 0o604);
      await rejection(
        openStore({ auth }),
        'UNSAFE_FILE',
        /^AppRole secret_id file .* \(mode 0604\); run chmod 600/,
      );
      const link = join(world.dir, 'linked-secret-id');
      await symlink(secretIdFile, link);
      await rejection(
        openStore({ auth: { approle: { ...auth.approle, secretIdFile: link } } }),
        'UNSAFE_FILE',
        `AppRole secret_id file ${link} is a symbolic link; point the config at the file itself`,
      );
    });

    it('names a missing or malformed token file', async () => {
      const missing = join(world.dir, 'no-such-token');
      await rejection(
        openStore({ auth: { tokenFile: missing } }),
        'NOT_FOUND',
        `Vault token file ${missing} does not exist`,
      );
      for (const content of ['', '\n', 'token = "hvs.x"']) {
        const tokenFile = await world.secretFile('odd-token', content);
        await rejection(
          openStore({ auth: { tokenFile } }),
          'CONFIG_INVALID',
          /must hold exactly one line with the value/,
        );
      }
    });

    it('refuses a dead token at start', async () => {
      const token = newToken(10);
      world.server.advanceClock(11);
      const tokenFile = await world.secretFile('dead-token', token);
      await rejection(
        openStore({ auth: { tokenFile } }),
        'DENIED',
        `Vault at ${world.server.url}: the Vault token in ${tokenFile} is expired or revoked`,
      );
    });
  });

  describe('AppRole', () => {
    it('logs in and serves the store', async () => {
      const store = await openStore({ auth: await approle('plain', 3600) });
      const t = await store.create(freshPf());
      secrets.push(t.active.token);
      assert.deepEqual(await store.read(t.pf), t);
    });

    it('reports a wrong secret_id as DENIED without quoting it', async () => {
      const auth = await approle('wrong', 3600);
      const wrong = '11111111-2222-4333-8444-555555555555';
      secrets.push(wrong);
      await world.secretFile('wrong-secret-id', wrong);
      await rejection(
        openStore({
          auth: { approle: { ...auth.approle, secretIdFile: join(world.dir, 'wrong-secret-id') } },
        }),
        'DENIED',
        /^Vault at .*: cannot log in with AppRole: invalid role or secret ID \(HTTP 400\)$/,
      );
    });

    it('gives up on a login that does not answer in time', async () => {
      world.server.addFault({
        kind: 'latency',
        latencyMs: 3000,
        match: { pathPrefix: 'auth/approle/login' },
      });
      await rejection(
        openStore({ auth: await approle('slow', 3600), requestTimeoutMs: 200 }),
        'TIMEOUT',
        `Vault at ${world.server.url}: cannot log in with AppRole: no answer within 200 ms`,
      );
    });

    it('logs in again when its token expired unnoticed, and the request succeeds', async () => {
      const clock = new ManualClock(); // never advanced: no renewal happens
      const store = await openStore({ auth: await approle('expiring', 60) }, clock);
      const t = await store.create(freshPf());
      secrets.push(t.active.token);
      world.server.advanceClock(120);
      world.server.resetRequestLog();
      assert.deepEqual(await store.read(t.pf), t);
      assert.deepEqual(
        world.server.requests.map((r) => `${r.method} ${r.path} ${r.status}`),
        [
          `GET /v1/${`secret/data/vfbroker/auth-host/pf/${t.pf}`} 403`,
          'GET /v1/auth/token/lookup-self 403',
          'POST /v1/auth/approle/login 200',
          `GET /v1/${`secret/data/vfbroker/auth-host/pf/${t.pf}`} 200`,
        ],
      );
    });

    it('logs in again before the max TTL instead of renewing into it', async () => {
      const clock = new ManualClock();
      const store = await openStore({ auth: await approle('capped', 60, 90) }, clock);
      const pf = freshPf();
      secrets.push((await store.create(pf)).active.token);
      assert.deepEqual(clock.pending, [40_000]);
      await elapse(clock, 40); // renewal: only 50 s left before the max TTL
      assert.deepEqual(clock.pending, [33_334]);
      await elapse(clock, 33.334); // log in afresh, full TTL again
      assert.deepEqual(clock.pending, [40_000]);
      await elapse(clock, 30); // 103 s: the first token is dead by now
      world.server.resetRequestLog();
      await store.read(pf);
      assert.deepEqual(kvStatuses(), [200]);
    });

    it('logs in again when Vault refuses to renew', async () => {
      const clock = new ManualClock();
      const store = await openStore({ auth: await approle('refused', 60) }, clock);
      const pf = freshPf();
      secrets.push((await store.create(pf)).active.token);
      world.server.addFault({
        kind: 'status',
        status: 403,
        times: 1,
        match: { pathPrefix: 'auth/token/renew-self' },
      });
      await elapse(clock, 40);
      assert.deepEqual(clock.pending, [1_000]);
      await elapse(clock, 1);
      assert.deepEqual(clock.pending, [40_000]);
      await elapse(clock, 30); // 71 s: the first token is dead
      world.server.resetRequestLog();
      await store.read(pf);
      assert.deepEqual(kvStatuses(), [200]);
    });
  });

  describe('token renewal', () => {
    it('renews at 2/3 of the TTL, so the token outlives its first TTL', async () => {
      const clock = new ManualClock();
      const store = await openStore(
        { auth: { tokenFile: await world.secretFile('renewed', newToken(60)) } },
        clock,
      );
      const pf = freshPf();
      secrets.push((await store.create(pf)).active.token);
      assert.deepEqual(clock.pending, [40_000]);
      await elapse(clock, 40);
      assert.deepEqual(clock.pending, [40_000]);
      await elapse(clock, 30); // 70 s after the token was made with a 60 s TTL
      world.server.resetRequestLog();
      await store.read(pf);
      assert.deepEqual(kvStatuses(), [200]);
    });

    it('without renewal the same token dies, and the store says so', async () => {
      const clock = new ManualClock();
      const tokenFile = await world.secretFile('unrenewed', newToken(60));
      const store = await openStore({ auth: { tokenFile } }, clock);
      const pf = freshPf();
      world.server.advanceClock(61);
      await rejection(
        store.read(pf),
        'DENIED',
        `Vault at ${world.server.url}: the Vault token in ${tokenFile} is expired or revoked`,
      );
    });

    it('retries a failed renewal with exponential backoff', async () => {
      const clock = new ManualClock();
      const store = await openStore(
        { auth: { tokenFile: await world.secretFile('flaky', newToken(60)) } },
        clock,
      );
      const pf = freshPf();
      secrets.push((await store.create(pf)).active.token);
      world.server.addFault({
        kind: 'status',
        status: 500,
        times: 2,
        match: { pathPrefix: 'auth/token/renew-self' },
      });
      await elapse(clock, 40);
      assert.deepEqual(clock.pending, [1_000]);
      await elapse(clock, 1);
      assert.deepEqual(clock.pending, [2_000]);
      await elapse(clock, 2);
      assert.deepEqual(clock.pending, [40_000]);
      await elapse(clock, 30); // 73 s
      world.server.resetRequestLog();
      await store.read(pf);
      assert.deepEqual(kvStatuses(), [200]);
      assert.ok(logs.records().some((r) => r['msg'] === 'Vault token upkeep failed; retrying'));
    });

    it('picks up a new token written to the token file once the old one dies', async () => {
      const tokenFile = await world.secretFile('rotated', newToken(60));
      const store = await openStore({ auth: { tokenFile } }, new ManualClock());
      const pf = freshPf();
      const t = await store.create(pf);
      secrets.push(t.active.token);
      world.server.advanceClock(61);
      await writeFile(tokenFile, newToken(3600));
      assert.deepEqual(await store.read(pf), t);
    });

    it('stops renewing when closed', async () => {
      const clock = new ManualClock();
      const store = await openStore(
        { auth: { tokenFile: await world.secretFile('closed', newToken(60)) } },
        clock,
      );
      assert.deepEqual(clock.pending, [40_000]);
      await store.close();
      assert.deepEqual(clock.pending, []);
    });
  });

  describe('TLS and the environment', () => {
    const poisoned = {
      VAULT_SKIP_VERIFY: 'true',
      NODE_TLS_REJECT_UNAUTHORIZED: '0',
      VAULT_ADDR: 'http://127.0.0.1:1',
      VAULT_PREFIX: '/evil',
      VAULT_NAMESPACE: 'evil',
    };

    it('checks the certificate even when VAULT_SKIP_VERIFY is set, and trusts caFile', async () => {
      const proxy = await startTlsProxy(world.server.url);
      const saved = { ...process.env };
      Object.assign(process.env, poisoned, { VAULT_TOKEN: world.server.rootToken });
      try {
        await rejection(
          openStore({ address: proxy.url }),
          'UNAVAILABLE',
          /^Vault at https:\/\/127\.0\.0\.1:\d+: cannot look up its own token: its TLS certificate is not trusted \([A-Z_]+\)$/,
        );
        const caFile = await world.secretFile('ca.pem', TEST_CA_PEM, 0o644);
        const store = await openStore({ address: proxy.url, caFile });
        const t = await store.create(freshPf());
        secrets.push(t.active.token);
        assert.deepEqual(await store.read(t.pf), t);
        const notPem = await world.secretFile('not-ca.pem', 'hello', 0o644);
        await rejection(
          openStore({ address: proxy.url, caFile: notPem }),
          'CONFIG_INVALID',
          `Vault CA file ${notPem} holds no PEM certificate`,
        );
      } finally {
        process.env = saved;
        await proxy.close();
      }
    });

    it('uses only its own token, address and paths, whatever VAULT_* says', async () => {
      const saved = { ...process.env };
      const outsider = world.server.createToken({ policies: ['default'], ttlSeconds: 3600 });
      secrets.push(outsider);
      Object.assign(process.env, poisoned, { VAULT_TOKEN: world.server.rootToken });
      try {
        const store = await openStore({ auth: { tokenFile: await world.secretFile('outsider', outsider) } });
        // The root token in VAULT_TOKEN would be allowed; the configured token is not.
        await rejection(store.read(freshPf()), 'DENIED');
        assert.ok(
          world.server.requests.every(
            (r) => r.path.startsWith('/v1/auth/') || r.path.startsWith('/v1/secret/'),
          ),
        );
      } finally {
        process.env = saved;
      }
    });

    it('prints no secret with DEBUG=* (node-vault would print request bodies)', async () => {
      const module = (p: string) => JSON.stringify(new URL(p, import.meta.url).href);
      const script = `
        const { VaultStore } = await import(${module('../../../src/broker/store/vault-store.js')});
        const { createLogger } = await import(${module('../../../src/log.js')});
        const logger = createLogger({ level: 'trace', destination: process.stderr });
        const store = await VaultStore.open(JSON.parse(process.argv[1]), { logger });
        const created = await store.create(${JSON.stringify(freshPf())});
        const pending = await store.writePending(created.pf, created.revision);
        await store.close();
        process.stdout.write(JSON.stringify([created.active.token, pending.pending.token]));
      `;
      const options = world.options('auth-host', { auth: await approle('debugged', 3600) });
      const { stdout, stderr } = await run(
        process.execPath,
        ['--input-type=module', '-e', script, JSON.stringify(options)],
        {
          env: { ...process.env, DEBUG: '*' },
        },
      );
      const tokens = JSON.parse(stdout) as string[];
      assert.equal(tokens.length, 2);
      assert.ok(stderr.includes('token record created'), 'the child should have logged');
      assertNoSecretsIn(stderr, [...tokens, ...secrets], 'the debug output');
    });
  });
});
