/**
 * Secret hygiene (DESIGN.md §6) of the real thing: `vfbroker serve` on VaultStore, the installed
 * hook, D-Bus. After a run of the flows that touch tokens — guests prepared, started, stopped and
 * released (authorised, stale, unauthorised), GetToken, a rotation, pf down and up, and Vault
 * failing under rotations — no VF token and no Vault token may appear in any broker log line, hook
 * output, D-Bus error reply, bus log, or file, except where they are allowed: the PF-driver runtime
 * files (0600) in the runtime directory. (The file store's files, 0600, are the other allowed place;
 * this run keeps tokens in Vault, so there are none.)
 *
 * The two PFs take their token differently: PF 0 on the PF driver's command line (igb `tokenVia:
 * argv`, like pf_bb_config's `-v`), PF 1 from a runtime file (`tokenVia: file`). The first is
 * visible in /proc/PID/cmdline to every local user — docs/security.md says so and this test checks
 * it — the second is not.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ServeWorld } from '../../reliability/serve-world.js';
import { ROOT_ONLY } from '../../reliability/root.js';
import { hookArgs, requireHookBundle, runHook } from '../../reliability/hook-runner.js';
import { stormDefinitions, stormGuests } from '../../reliability/storm.js';
import { filesHolding, processesHolding } from '../../reliability/secret-walk.js';
import { startVaultWorld, vaultFetch, type VaultWorld } from '../store/vault-world.js';
import { assertNoSecretsIn } from '../../support/log-capture.js';
import type { PciAddress } from '../../../src/pci/address.js';

const HOST_ID = 'hygiene';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

describe('secret hygiene of a whole run', { skip: ROOT_ONLY }, () => {
  let vault: VaultWorld;
  let world: ServeWorld;
  const startedAt = Date.now() - 1_000;
  /** Everything a user or another process could read: hook output, D-Bus error texts. */
  const shown: string[] = [];
  let cmdlineHolders: { argv: number[]; file: number[] };

  before(async () => {
    requireHookBundle();
    vault = await startVaultWorld();
    const guests = stormGuests({ authorised: 2, stale: 1, unauthorised: 1 });
    world = await ServeWorld.create({
      pfCount: 2,
      guests,
      vault: { address: vault.server.url, tokenFile: vault.tokenFile, hostId: HOST_ID },
      tokenVia: ['argv', 'file'],
    });
    await world.startBroker();
    const client = await world.client();
    const failed = async (p: Promise<unknown>): Promise<void> => {
      const err = await p.then(
        () => assert.fail('expected the call to fail'),
        (e: unknown) => e,
      );
      shown.push((err as Error).message);
    };

    const definitions = await stormDefinitions(world, guests);
    for (const g of guests) {
      for (const op of ['prepare', 'started', 'stopped', 'release'] as const) {
        const run = await runHook(world.hookSettings, hookArgs(g.name, op), {
          file: definitions.get(g.uuid) ?? '',
        });
        shown.push(run.stderr, run.stdout);
      }
    }
    const [pf0, pf1] = [world.pf(0), world.pf(1)];
    cmdlineHolders = {
      argv: await processesHolding([await client.getToken(await world.vf(0, 0))]),
      file: await processesHolding([await client.getToken(await world.vf(1, 0))]),
    };
    assert.equal(await client.rotate(pf0), 'done');
    await client.pfDown(pf1, false);
    await client.pfUp(pf1, false);

    vault.server.seal();
    await failed(client.rotate(pf0));
    vault.server.unseal();
    vault.server.addFault({ match: { method: 'POST' }, kind: 'status', status: 403 });
    await failed(client.rotate(pf0));
    vault.server.clearFaults();
    vault.server.addFault({ match: { method: 'POST' }, kind: 'status', status: 500 });
    await failed(client.rotate(pf1));
    vault.server.clearFaults();
    await failed(client.getToken('0000:99:00.1' as PciAddress));
    assert.equal(await world.stopBroker().then((e) => e?.code), 0);
  });
  after(async () => {
    await world.dispose();
    await vault.dispose();
  });

  /** Every token Vault holds or held for this host's PFs (all versions), and the Vault tokens. */
  async function secrets(): Promise<string[]> {
    const tokens = new Set<string>();
    for (const pf of [world.pf(0), world.pf(1)]) {
      const path = `secret/data/vfbroker/${HOST_ID}/pf/${pf}`;
      const latest = await vaultFetch(vault.server.url, vault.server.rootToken, 'GET', path);
      const current = (latest.body as { data: { metadata: { version: number } } }).data.metadata.version;
      for (let v = 1; v <= current; v++) {
        const reply = await vaultFetch(
          vault.server.url,
          vault.server.rootToken,
          'GET',
          `${path}?version=${v}`,
        );
        for (const t of JSON.stringify(reply.body).match(UUID) ?? []) tokens.add(t);
      }
    }
    // Two PFs, PF 0 rotated at least once.
    assert.ok(tokens.size >= 3, `only ${tokens.size} tokens found`);
    return [...tokens, ...vault.secrets];
  }

  it('no secret in any broker log line, across every broker of the run', async () => {
    assertNoSecretsIn(world.brokers.map((b) => b.output).join('\n'), await secrets(), 'the broker’s log');
    assert.ok(
      world.brokers.some((b) => b.output.includes('PrepareGuest decision')),
      'the broker logged nothing',
    );
  });

  it('no secret in the hooks’ output or the D-Bus error replies', async () => {
    assert.equal(shown.filter((s) => s.startsWith('Vault at ')).length, 3, shown.join('\n'));
    assertNoSecretsIn(shown.join('\n'), await secrets(), 'hook output and D-Bus errors');
  });

  it('no secret in the bus daemon’s log', async () => {
    const log = await readFile(join(world.dir, 'bus', 'dbus-daemon.log'), 'utf8');
    assertNoSecretsIn(log, await secrets(), 'the dbus-daemon log');
  });

  it('tokens on disk only in the PF driver’s runtime file, mode 0600', async () => {
    const all = await secrets();
    const guests = join(world.dir, 'guests');
    const kernel = world.stateFile;
    // The world's directory is under the temporary directory, which is searched for what this run wrote.
    const found = (await filesHolding([tmpdir()], all, { since: startedAt })).filter(
      // The guests' definitions are libvirt's files, the simulated kernel's state is kernel memory,
      // and the Vault token file is the broker's credential, given by the operator.
      (f) => !f.path.startsWith(guests + '/') && f.path !== kernel && !f.path.startsWith(vault.dir + '/'),
    );
    assert.deepEqual(
      found.map((f) => [f.path, f.mode.toString(8)]),
      [[join(world.runtimeDirectory, `${world.pf(1)}.vf-token`), '600']],
    );
  });

  it('a token given on the command line is visible in /proc to every local user; one given by file is not', () => {
    assert.equal(cmdlineHolders.argv.length, 1, 'the argv PF driver should show its token (documented)');
    assert.deepEqual(cmdlineHolders.file, []);
  });
});
