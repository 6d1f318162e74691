/**
 * `npm run bench:store`: how fast the broker can answer "what is this PF's active token?", with the
 * TokenCache and straight from VaultStore, against the Vault API test server on loopback; and how many
 * Vault requests 1,000 guest starts cost once the cache is warm (the budget is 0: DESIGN.md §8).
 * Prints figures; asserts nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { TokenCache } from '../src/broker/store/token-cache.js';
import type { TokenStore } from '../src/broker/store/token-store.js';
import { VaultStore } from '../src/broker/store/vault-store.js';
import { createLogger } from '../src/log.js';
import { formatPciAddress, type PciAddress } from '../src/pci/address.js';
import { startVaultTestServer } from '../test/support/vault/server.js';

const PFS = 8;
const GUEST_STARTS = 1000;
/** Devices a simulated guest asks about: most guests get one or two VFs. */
const DEVICES_PER_GUEST = 2;
const RUN_MS = 1000;

/** Calls `read` for `pf` in turn, `concurrency` at a time, for RUN_MS; returns reads per second. */
async function readsPerSecond(
  read: (pf: PciAddress) => Promise<unknown>,
  pfs: readonly PciAddress[],
  concurrency: number,
): Promise<number> {
  let done = 0;
  const start = performance.now();
  const end = start + RUN_MS;
  const lane = async (offset: number): Promise<void> => {
    for (let i = offset; performance.now() < end; i++) {
      await read(pfs[i % pfs.length]!);
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => lane(i)));
  return done / ((performance.now() - start) / 1000);
}

async function main(): Promise<void> {
  const server = await startVaultTestServer();
  const dir = await mkdtemp(join(tmpdir(), 'vfb-bench-'));
  let store: TokenStore | undefined;
  try {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, server.rootToken, { mode: 0o600 });
    store = await VaultStore.open(
      {
        address: server.url,
        auth: { tokenFile },
        mount: 'secret',
        prefix: 'vfbroker',
        requestTimeoutMs: 5000,
        hostId: 'bench',
      },
      { logger: createLogger({ level: 'silent' }) },
    );
    const pfs = Array.from({ length: PFS }, (_, i) =>
      formatPciAddress({ domain: 0, bus: 0x10 + i, slot: 0, function: 0 }),
    );
    for (const pf of pfs) await store.create(pf);
    const direct = store;
    const cache = new TokenCache(store);

    const rows: Array<[string, string]> = [];
    for (const concurrency of [1, 16]) {
      const rate = await readsPerSecond((pf) => direct.read(pf), pfs, concurrency);
      rows.push([
        `VaultStore.read, ${concurrency} at a time`,
        `${Math.round(rate).toLocaleString('en')} reads/s`,
      ]);
    }
    for (const concurrency of [1, 16]) {
      const rate = await readsPerSecond((pf) => cache.active(pf), pfs, concurrency);
      rows.push([
        `TokenCache.active, ${concurrency} at a time`,
        `${Math.round(rate).toLocaleString('en')} reads/s`,
      ]);
    }

    // Guest starts once warm: every PF has been read once; then 1,000 guests start, all at once.
    cache.clear();
    for (const pf of pfs) await cache.get(pf);
    server.resetRequestLog();
    await Promise.all(
      Array.from({ length: GUEST_STARTS }, (_, guest) =>
        Promise.all(
          Array.from({ length: DEVICES_PER_GUEST }, (_, d) => cache.active(pfs[(guest + d) % pfs.length]!)),
        ),
      ),
    );
    rows.push([
      `Vault requests per ${GUEST_STARTS.toLocaleString('en')} guest starts (warm)`,
      `${server.requests.length} (target 0)`,
    ]);

    // Cold: the same burst right after the broker started, before any read.
    cache.clear();
    server.resetRequestLog();
    await Promise.all(
      Array.from({ length: GUEST_STARTS }, (_, guest) => cache.active(pfs[guest % pfs.length]!)),
    );
    rows.push([
      `Vault requests per ${GUEST_STARTS.toLocaleString('en')} guest starts (cold, ${PFS} PFs)`,
      `${server.requests.length} (one per PF)`,
    ]);

    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(
      `token store bench (Vault API test server on loopback, ${PFS} PFs, ${RUN_MS} ms per figure)\n`,
    );
    for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
  } finally {
    await store?.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
