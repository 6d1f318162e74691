/**
 * `npm run bench:rotation`: rotates 64 live-mode PFs at once, end to end — journal, pending
 * generation in Vault, the new token set on each simulated PF, promote, definition sync,
 * TokenRotated — with VaultStore against the Vault API test server on loopback. Prints the wall
 * time (target ≤ 2 s) and the Vault requests it cost; asserts nothing.
 */
import { performance } from 'node:perf_hooks';
import { VaultStore } from '../src/broker/store/vault-store.js';
import { RotationWorld } from '../test/integration/rotation/support/world.js';
import { startVaultWorld } from '../test/integration/store/vault-world.js';

const PFS = 64;

async function main(): Promise<void> {
  const vault = await startVaultWorld();
  let world: RotationWorld | undefined;
  try {
    world = await RotationWorld.start({
      mode: 'live',
      pfCount: PFS,
      vfs: 2,
      logLevel: 'info',
      openStore: (logger) => VaultStore.open(vault.options('bench'), { logger }),
    });
    const w = world;
    const managed = w.entries.map((_, i) => w.managed(i));
    // The broker has read every PF's token once by now (bring-up); rotation starts from the cache.
    vault.server.resetRequestLog();

    const start = performance.now();
    const states = await Promise.all(managed.map((m) => w.rotator.rotate(m)));
    const wallMs = performance.now() - start;

    const byMethod = new Map<string, number>();
    for (const r of vault.server.requests) byMethod.set(r.method, (byMethod.get(r.method) ?? 0) + 1);
    const outcomes = new Map<string, number>();
    for (const s of states) outcomes.set(s, (outcomes.get(s) ?? 0) + 1);
    const rows: Array<[string, string]> = [
      [`wall time, ${PFS} PFs at once`, `${Math.round(wallMs)} ms (target ≤ 2000 ms)`],
      ['per PF', `${(wallMs / PFS).toFixed(1)} ms`],
      ['outcomes', [...outcomes].map(([s, n]) => `${n} ${s}`).join(', ')],
      [
        'Vault requests',
        `${vault.server.requests.length} (${[...byMethod].map(([m, n]) => `${n} ${m}`).join(', ')}), ${(vault.server.requests.length / PFS).toFixed(1)} per PF`,
      ],
      ['TokenRotated events', String(w.events.rotated.length)],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(
      'rotation bench (live mode, simulated PFs, VaultStore on the Vault API test server)\n',
    );
    for (const [k, v] of rows) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
  } finally {
    await world?.dispose();
    await vault.dispose();
  }
}

await main();
