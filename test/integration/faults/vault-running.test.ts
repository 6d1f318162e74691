/**
 * Vault failing under a running broker (VaultStore against the Vault API test server): down
 * (every connection dropped), sealed, slow (answers after the request timeout), 403 and 500, during
 * PrepareGuest with a cold cache, GetToken with a cold cache, and a rotation. For each: what the user
 * sees (the hook's exit status and line, the error's code and message), that nothing is lost (the
 * active token, other guests' leases, the PF driver's token), and that the same broker serves again
 * as soon as Vault is back — no restart, so no crash loop.
 *
 * The broker runs in-process (the rotation tests' world) and the hook is runQemuHook called
 * directly: see test/reliability/direct-hook.ts for why the D-Bus hop changes nothing here.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { GUEST_A, GUEST_B, ROOT, RotationWorld } from '../rotation/support/world.js';
import { startVaultWorld, type VaultWorld } from '../store/vault-world.js';
import { runDirectHook } from '../../reliability/direct-hook.js';
import { domainXml } from '../../reliability/guest-xml.js';
import { hookArgs } from '../../reliability/hook-runner.js';
import { VaultStore } from '../../../src/broker/store/vault-store.js';
import { ERROR_KINDS, VfbError, type ErrorCode } from '../../../src/errors.js';
import type { PciAddress } from '../../../src/pci/address.js';
import { assertNoSecretsIn } from '../../support/log-capture.js';
import type { VaultTestServer } from '../../support/vault/server.js';

const TIMEOUT_MS = 300;

interface Fault {
  /** Breaks Vault for every request (or only writes: a read first succeeds, the write fails). */
  apply(server: VaultTestServer, only?: 'POST'): void;
  readonly code: ErrorCode;
  /** How long a write the client gave up on may take to land anyway. */
  readonly settleMs: number;
  /** Why, as the store words it for an operation on `path`. */
  why(op: 'read' | 'write', path: string, vault: VaultWorld): string;
}

const FAULTS: Readonly<Record<'down' | 'sealed' | 'slow' | '403' | '500', Fault>> = {
  down: {
    apply: (s, only) => s.addFault({ kind: 'drop', ...match(only) }),
    code: 'UNAVAILABLE',
    settleMs: 0,
    why: (op, path) => `cannot ${op} ${path}: connection failed (ECONNRESET)`,
  },
  sealed: {
    apply: (s) => s.seal(),
    code: 'SEALED',
    settleMs: 0,
    // Sealing is Vault-wide, so even a rotation fails at its first read.
    why: (_op, path) => `cannot read ${path}: Vault is sealed (HTTP 503)`,
  },
  slow: {
    apply: (s, only) => s.addFault({ kind: 'latency', latencyMs: TIMEOUT_MS * 2, ...match(only) }),
    code: 'TIMEOUT',
    settleMs: TIMEOUT_MS * 2,
    why: (op, path) => `cannot ${op} ${path}: no answer within ${TIMEOUT_MS} ms`,
  },
  '403': {
    apply: (s, only) => s.addFault({ kind: 'status', status: 403, ...match(only) }),
    code: 'DENIED',
    settleMs: 0,
    // A 403 on everything, lookup-self included, means the broker's own token is dead.
    why: (op, path, vault) =>
      op === 'read'
        ? `the Vault token in ${vault.tokenFile} is expired or revoked`
        : `cannot write ${path}: injected HTTP 403 (HTTP 403)`,
  },
  '500': {
    apply: (s, only) => s.addFault({ kind: 'status', status: 500, ...match(only) }),
    code: 'UNAVAILABLE',
    settleMs: 0,
    why: (op, path) => `cannot ${op} ${path}: internal error (HTTP 500)`,
  },
};

function match(only: 'POST' | undefined): { match?: { method: string } } {
  return only === undefined ? {} : { match: { method: only } };
}

let vault: VaultWorld;
let world: RotationWorld | undefined;
let hosts = 0;

before(async () => {
  vault = await startVaultWorld();
});
after(async () => {
  await vault.dispose();
});
afterEach(async () => {
  vault.server.unseal();
  vault.server.clearFaults();
  await world?.dispose();
  world = undefined;
});

async function vaultWorld(): Promise<{ w: RotationWorld; hostId: string }> {
  const hostId = `faults-${++hosts}`;
  world = await RotationWorld.start({
    mode: 'live',
    openStore: (logger) =>
      VaultStore.open(vault.options(hostId, { requestTimeoutMs: TIMEOUT_MS }), { logger }),
    secrets: vault.secrets,
  });
  return { w: world, hostId };
}

/** How the store names Vault in every message. */
function subject(): string {
  return `Vault at ${vault.server.url}`;
}

function dataPath(hostId: string, pf: PciAddress): string {
  return `secret/data/vfbroker/${hostId}/pf/${pf}`;
}

async function rejection(p: Promise<unknown>): Promise<VfbError> {
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof VfbError, String(err));
  return err;
}

function prepareHook(w: RotationWorld, vf: PciAddress, token: string) {
  return runDirectHook(
    { broker: () => w.broker, sysfs: w.sim, logger: w.logs.logger },
    hookArgs(GUEST_A.name, 'prepare'),
    domainXml(GUEST_A.name, GUEST_A.uuid, [{ vf, token }]),
  );
}

for (const [name, fault] of Object.entries(FAULTS)) {
  describe(`Vault ${name} under a running broker`, () => {
    it('PrepareGuest with a cold cache: the start is refused with one line, and passes once Vault is back', async () => {
      const { w, hostId } = await vaultWorld();
      const before = (await w.backing.read(w.pf())).active;
      assert.equal((await w.startGuest(GUEST_B, w.vf(1), before.token)).verdict, 'ok');
      w.instance.tokens.clear();
      fault.apply(vault.server);

      const refused = await prepareHook(w, w.vf(0), before.token);

      const message = `${subject()}: ${fault.why('read', dataPath(hostId, w.pf()), vault)}`;
      assert.equal(refused.exitCode, ERROR_KINDS[fault.code].exit);
      assert.equal(refused.stderrLines.length, 1);
      const line = refused.stderrLines[0] ?? '';
      assert.ok(line.startsWith('vfbroker: '), line);
      assert.ok(line.includes(message), line);
      assert.ok(line.includes(`; VF ${w.vf(0)} not checked; start refused — `), line);
      if (fault.code === 'SEALED') assert.ok(line.endsWith(`— ${ERROR_KINDS.SEALED.hint}`), line);
      assert.equal(w.instance.leases.get(w.vf(0)), undefined, 'a refused start left a lease');
      assert.equal(w.instance.leases.get(w.vf(1))?.guestUuid, GUEST_B.uuid, 'another guest lost its lease');

      vault.server.unseal();
      vault.server.clearFaults();
      const accepted = await prepareHook(w, w.vf(0), before.token);
      assert.deepEqual(accepted, { exitCode: 0, stderrLines: [] });
      assert.equal(w.instance.leases.get(w.vf(0))?.guestUuid, GUEST_A.uuid);
      assert.deepEqual((await w.backing.read(w.pf())).active, before);
      assertNoSecretsIn([...refused.stderrLines, message].join('\n'), w.secrets(), 'the hook’s output');
      w.assertNoSecretsLogged();
    });

    if (fault.code === 'UNAVAILABLE') {
      it('the hook does not blame the broker for Vault being unavailable', async () => {
        const { w } = await vaultWorld();
        const token = (await w.backing.read(w.pf())).active.token;
        w.instance.tokens.clear();
        fault.apply(vault.server);

        const refused = await prepareHook(w, w.vf(0), token);

        const line = refused.stderrLines[0] ?? '';
        assert.ok(!line.includes('broker not reachable'), line);
        assert.ok(!line.endsWith('— systemctl status vfbroker'), line);
      });
    }

    it(`GetToken with a cold cache fails with ${fault.code}, and answers the same token once Vault is back`, async () => {
      const { w, hostId } = await vaultWorld();
      const before = (await w.backing.read(w.pf())).active;
      w.instance.tokens.clear();
      fault.apply(vault.server);

      const err = await rejection(w.broker.getToken(ROOT, w.vf(0)));

      assert.equal(err.code, fault.code);
      assert.equal(err.message, `${subject()}: ${fault.why('read', dataPath(hostId, w.pf()), vault)}`);
      vault.server.unseal();
      vault.server.clearFaults();
      assert.equal(await w.broker.getToken(ROOT, w.vf(0)), before.token);
      assertNoSecretsIn(err.message, w.secrets(), 'the error message');
      w.assertNoSecretsLogged();
    });

    it('a rotation fails cleanly: running guests and the PF driver keep a token Vault has, and the next one converges', async () => {
      const { w, hostId } = await vaultWorld();
      const before = (await w.backing.read(w.pf())).active;
      assert.equal((await w.startGuest(GUEST_B, w.vf(1), before.token)).verdict, 'ok');
      fault.apply(vault.server, 'POST');

      const err = await rejection(w.rotator.rotate(w.managed()));

      assert.equal(err.code, fault.code);
      const op = name === 'sealed' ? 'read' : 'write';
      assert.equal(err.message, `${subject()}: ${fault.why(op, dataPath(hostId, w.pf()), vault)}`);
      // A slow write still lands after its answer was abandoned: let it, so the next rotation meets it.
      await new Promise((resolve) => setTimeout(resolve, fault.settleMs));
      vault.server.unseal();
      vault.server.clearFaults();
      assert.equal(await w.driverHolds(), 'active');
      assert.equal(w.instance.leases.get(w.vf(1))?.guestUuid, GUEST_B.uuid);

      assert.equal(await w.rotator.rotate(w.managed()), 'done');
      const after = await w.assertConverged();
      assert.ok(after.active.generation > before.generation);
      assertNoSecretsIn(err.message, w.secrets(), 'the error message');
      w.assertNoSecretsLogged();
    });
  });
}
