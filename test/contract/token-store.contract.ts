/**
 * The TokenStore contract: one suite, run against every implementation (test/integration/store/):
 * FileStore, VaultStore against the Vault API test server, and VaultStore against a real Vault when
 * VAULT_ADDR and VAULT_TOKEN are set. A behaviour that only one backend has is a bug in the other.
 *
 * Every test also checks that no token (VF token, Vault token) reached a log line, an error message or
 * an error's details.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { VfbError, type ErrorCode } from '../../src/errors.js';
import type { Logger } from '../../src/log.js';
import { formatPciAddress, type PciAddress } from '../../src/pci/address.js';
import { HISTORY_LIMIT, type PfTokens, type TokenStore } from '../../src/broker/store/token-store.js';
import { assertNoSecretsIn, captureLogs, type CapturedLogs } from '../support/log-capture.js';

export interface TokenStoreFixture {
  /** A new store instance over the fixture's shared backing: a second broker, or the CLI. */
  open(logger: Logger): Promise<TokenStore>;
  /** Writes raw data as the PF's latest record, bypassing the store: a damaged or hand-edited record. */
  plant(pf: PciAddress, data: Record<string, unknown>): Promise<void>;
  /** The PF's latest stored data as the backend holds it, to prove nothing was overwritten. */
  raw(pf: PciAddress): Promise<unknown>;
  /** Credentials the fixture handed out (Vault tokens…): they must never be logged either. */
  readonly secrets: readonly string[];
  dispose(): Promise<void>;
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * Awaits a rejection with `code` and checks what every store error must be: a VfbError with one line
 * of message, no secret in its message, hint or details, and no `cause` (a Vault client error there
 * would carry the Vault token in its request headers).
 */
export async function expectStoreError(
  p: Promise<unknown>,
  code: ErrorCode,
  secrets: readonly string[],
  message?: RegExp | string,
): Promise<VfbError> {
  const err = await p.then(
    () => assert.fail(`expected ${code}, but it succeeded`),
    (e: unknown) => e,
  );
  return assertStoreError(err, code, secrets, message);
}

/** The checks of expectStoreError, on an error already caught. */
export function assertStoreError(
  err: unknown,
  code: ErrorCode,
  secrets: readonly string[],
  message?: RegExp | string,
): VfbError {
  assert.ok(err instanceof VfbError, `expected a VfbError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.doesNotMatch(err.message, /\n/);
  if (typeof message === 'string') assert.equal(err.message, message);
  else if (message) assert.match(err.message, message);
  assert.equal(err.cause, undefined);
  assertNoSecretsIn(`${err.message} ${err.hint} ${JSON.stringify(err.details)}`, secrets, 'an error');
  return err;
}

export function defineTokenStoreContract(
  name: string,
  factory: () => Promise<TokenStoreFixture>,
  options: { readonly skip?: string } = {},
): void {
  describe(`TokenStore contract: ${name}`, { skip: options.skip ?? false }, () => {
    let fixture: TokenStoreFixture;
    let logs: CapturedLogs;
    let store: TokenStore;
    let other: TokenStore;
    const secrets = new Set<string>();
    let nextBus = 0x10;

    /** A PF address no other test in this suite uses, so tests share one backing store. */
    const freshPf = (): PciAddress => formatPciAddress({ domain: 0, bus: nextBus++, slot: 0, function: 0 });

    const remember = (t: PfTokens): PfTokens => {
      secrets.add(t.active.token);
      if (t.pending) secrets.add(t.pending.token);
      return t;
    };

    const rejects = (p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<VfbError> =>
      expectStoreError(p, code, [...secrets], message);

    before(async () => {
      fixture = await factory();
      for (const s of fixture.secrets) secrets.add(s);
      logs = captureLogs();
      store = await fixture.open(logs.logger);
      other = await fixture.open(logs.logger);
    });

    after(async () => {
      await store?.close();
      await other?.close();
      await fixture?.dispose();
    });

    afterEach(() => logs.assertNoSecrets([...secrets]));

    it('creates generation 1 with a fresh UUIDv4 token and reads it back', async () => {
      const pf = freshPf();
      const created = remember(await store.create(pf));
      assert.equal(created.pf, pf);
      assert.equal(created.active.generation, 1);
      assert.match(created.active.token, UUID_V4);
      assert.equal(created.pending, null);
      assert.ok(Number.isInteger(created.revision) && created.revision >= 1);
      assert.ok(!Number.isNaN(Date.parse(created.active.createdAt)));
      assert.deepEqual(await other.read(pf), created);
      const second = remember(await store.create(freshPf()));
      assert.notEqual(second.active.token, created.active.token);
    });

    it('refuses to create a PF that has a record, and leaves it unchanged', async () => {
      const pf = freshPf();
      const created = remember(await store.create(pf));
      await rejects(other.create(pf), 'CONFLICT', new RegExp(`PF ${pf} already has a token record`));
      assert.deepEqual(await store.read(pf), created);
    });

    it('answers NOT_FOUND for a PF without a record', async () => {
      const pf = freshPf();
      await rejects(store.read(pf), 'NOT_FOUND', new RegExp(`PF ${pf} has no token record`));
      await rejects(store.history(pf), 'NOT_FOUND');
      await rejects(store.writePending(pf, 1), 'NOT_FOUND');
      await rejects(store.remove(pf, 1), 'NOT_FOUND');
    });

    it('writes a pending generation beside the active one', async () => {
      const pf = freshPf();
      const created = remember(await store.create(pf));
      const pending = remember(await store.writePending(pf, created.revision));
      assert.deepEqual(pending.active, created.active);
      assert.equal(pending.pending?.generation, 2);
      assert.match(pending.pending?.token ?? '', UUID_V4);
      assert.notEqual(pending.pending?.token, created.active.token);
      assert.ok(pending.revision > created.revision);
      assert.deepEqual(await other.read(pf), pending);
    });

    it('refuses a second pending generation with BUSY, and a stale revision with CONFLICT', async () => {
      const pf = freshPf();
      const created = remember(await store.create(pf));
      const pending = remember(await store.writePending(pf, created.revision));
      await rejects(store.writePending(pf, pending.revision), 'BUSY', /already has pending generation 2/);
      await rejects(store.writePending(pf, created.revision), 'CONFLICT', /re-read and retry/);
      assert.deepEqual(await store.read(pf), pending);
    });

    it('promotes the pending generation and records the activation, never the token', async () => {
      const pf = freshPf();
      const created = remember(await store.create(pf));
      const pending = remember(await store.writePending(pf, created.revision));
      const next = pending.pending;
      assert.ok(next);
      const promoted = await store.promote(pf, { revision: pending.revision, generation: next.generation });
      assert.deepEqual(promoted.active, next);
      assert.equal(promoted.pending, null);
      assert.deepEqual(await other.read(pf), promoted);
      const history = await other.history(pf);
      assert.deepEqual(
        history.map((h) => h.generation),
        [1, 2],
      );
      for (const h of history) assert.ok(!Number.isNaN(Date.parse(h.activatedAt)));
      assertNoSecretsIn(JSON.stringify(history), [...secrets], 'the history');
    });

    it('refuses to promote another generation, or when nothing is pending', async () => {
      const pf = freshPf();
      const created = remember(await store.create(pf));
      await rejects(
        store.promote(pf, { revision: created.revision, generation: 2 }),
        'NOT_FOUND',
        /no pending/,
      );
      const pending = remember(await store.writePending(pf, created.revision));
      await rejects(
        store.promote(pf, { revision: pending.revision, generation: 3 }),
        'CONFLICT',
        /has pending generation 2, not 3/,
      );
      await rejects(store.promote(pf, { revision: created.revision, generation: 2 }), 'CONFLICT');
      assert.deepEqual(await store.read(pf), pending);
    });

    it('abandons a pending generation and never reuses its number', async () => {
      const pf = freshPf();
      const created = remember(await store.create(pf));
      const pending = remember(await store.writePending(pf, created.revision));
      const abandoned = await store.abandonPending(pf, { revision: pending.revision, generation: 2 });
      assert.deepEqual(abandoned.active, created.active);
      assert.equal(abandoned.pending, null);
      const again = remember(await store.writePending(pf, abandoned.revision));
      assert.equal(again.pending?.generation, 3);
      assert.notEqual(again.pending?.token, pending.pending?.token);
      assert.deepEqual(
        (await store.history(pf)).map((h) => h.generation),
        [1],
      );
    });

    it('leaves a state a restarted broker resumes from after every step', async () => {
      const pf = freshPf();
      const afterRestart = async (expected: PfTokens): Promise<PfTokens> => {
        const restarted = await fixture.open(logs.logger);
        try {
          assert.deepEqual(await restarted.read(pf), expected);
        } finally {
          await restarted.close();
        }
        return expected;
      };
      const created = await afterRestart(remember(await store.create(pf)));
      const pending = await afterRestart(remember(await store.writePending(pf, created.revision)));
      const abandoned = await afterRestart(
        await store.abandonPending(pf, { revision: pending.revision, generation: 2 }),
      );
      const pending3 = await afterRestart(remember(await store.writePending(pf, abandoned.revision)));
      const promoted = await afterRestart(
        await store.promote(pf, { revision: pending3.revision, generation: 3 }),
      );
      // Each step has its own, increasing revision: a journal that noted it can tell whether the step happened.
      const revisions = [created, pending, abandoned, pending3, promoted].map((s) => s.revision);
      for (let i = 1; i < revisions.length; i++)
        assert.ok(revisions[i]! > revisions[i - 1]!, revisions.join(' '));
    });

    it('keeps only the last HISTORY_LIMIT activations', async () => {
      const pf = freshPf();
      let state = remember(await store.create(pf));
      for (let i = 0; i < HISTORY_LIMIT + 2; i++) {
        const pending = remember(await store.writePending(pf, state.revision));
        state = await store.promote(pf, {
          revision: pending.revision,
          generation: pending.pending!.generation,
        });
      }
      const history = await store.history(pf);
      assert.equal(history.length, HISTORY_LIMIT);
      assert.equal(history.at(-1)?.generation, HISTORY_LIMIT + 3);
      assert.equal(history[0]?.generation, 4);
    });

    it('lists PFs with a record, sorted, and forgets removed ones', async () => {
      const a = freshPf();
      const b = freshPf();
      const rb = remember(await store.create(b));
      remember(await store.create(a));
      const listed = await other.list();
      assert.deepEqual(
        listed.filter((p) => p === a || p === b),
        [a, b],
      );
      assert.deepEqual(listed, [...listed].sort());
      await store.remove(b, rb.revision);
      assert.ok(!(await other.list()).includes(b));
      assert.ok((await other.list()).includes(a));
    });

    it('removes a PF with CAS, after which it can be created afresh', async () => {
      const pf = freshPf();
      const created = remember(await store.create(pf));
      const pending = remember(await store.writePending(pf, created.revision));
      await rejects(store.remove(pf, created.revision), 'CONFLICT');
      assert.deepEqual(await store.read(pf), pending);
      await other.remove(pf, pending.revision);
      await rejects(store.read(pf), 'NOT_FOUND');
      await rejects(store.writePending(pf, pending.revision), 'NOT_FOUND');
      const again = remember(await store.create(pf));
      assert.equal(again.active.generation, 1);
      assert.notEqual(again.active.token, created.active.token);
    });

    it('lets exactly one of two concurrent creators win; the loser re-reads the winner', async () => {
      const pf = freshPf();
      const results = await Promise.allSettled([store.create(pf), other.create(pf)]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      assert.equal(won.length, 1);
      assert.equal(lost.length, 1);
      const winner = remember((won[0] as PromiseFulfilledResult<PfTokens>).value);
      assertStoreError((lost[0] as PromiseRejectedResult).reason, 'CONFLICT', [...secrets]);
      assert.deepEqual(await store.read(pf), winner);
      assert.deepEqual(await other.read(pf), winner);
    });

    it('lets exactly one of two concurrent rotations win', async () => {
      const pf = freshPf();
      const created = remember(await store.create(pf));
      const results = await Promise.allSettled([
        store.writePending(pf, created.revision),
        other.writePending(pf, created.revision),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1);
      const winner = remember((won[0] as PromiseFulfilledResult<PfTokens>).value);
      const lost = results.find((r) => r.status === 'rejected');
      assertStoreError((lost as PromiseRejectedResult).reason, 'CONFLICT', [...secrets]);
      assert.deepEqual(await other.read(pf), winner);

      const ref = { revision: winner.revision, generation: 2 };
      const promotions = await Promise.allSettled([store.promote(pf, ref), other.promote(pf, ref)]);
      assert.equal(promotions.filter((r) => r.status === 'fulfilled').length, 1);
      const promoted = await store.read(pf);
      assert.deepEqual(promoted.active, winner.pending);
      assert.deepEqual(
        (await store.history(pf)).map((h) => h.generation),
        [1, 2],
      );
    });

    describe('malformed records', () => {
      const planted = async (mutate: (rec: Record<string, unknown>) => void): Promise<PciAddress> => {
        const pf = freshPf();
        remember(await store.create(pf));
        const rec = structuredClone((await fixture.raw(pf)) as Record<string, unknown>);
        mutate(rec);
        await fixture.plant(pf, rec);
        return pf;
      };

      const expectCorrupt = async (pf: PciAddress, field: RegExp): Promise<void> => {
        const before = await fixture.raw(pf);
        const err = await rejects(store.read(pf), 'STORE_CORRUPT', new RegExp(`PF ${pf}`));
        assert.match(err.message, field);
        const revision = err.details['revision'];
        assert.equal(typeof revision, 'number');
        await rejects(store.writePending(pf, revision as number), 'STORE_CORRUPT');
        await rejects(store.create(pf), 'STORE_CORRUPT');
        assert.deepEqual(await fixture.raw(pf), before, 'a corrupt record must not be overwritten');
        // The way out: remove it by the revision the error reported, then create afresh.
        await other.remove(pf, revision as number);
        assert.equal(remember(await store.create(pf)).active.generation, 1);
      };

      it('reports a missing token as STORE_CORRUPT naming the field', async () => {
        const pf = await planted((rec) => {
          delete (rec['active'] as Record<string, unknown>)['token'];
        });
        await expectCorrupt(pf, /active\.token/);
      });

      it('reports a token that is not a UUID without quoting it', async () => {
        const notUuid = 'hunter2-not-a-uuid-but-a-secret';
        secrets.add(notUuid);
        const pf = await planted((rec) => {
          (rec['active'] as Record<string, unknown>)['token'] = notUuid;
        });
        await expectCorrupt(pf, /active\.token/);
      });

      it('reports a pending token that is not a UUID', async () => {
        const pf = await planted((rec) => {
          rec['pending'] = { generation: 2, token: 'ABCDEF', createdAt: '2024-01-01T00:00:00.000Z' };
          rec['lastGeneration'] = 2;
        });
        await expectCorrupt(pf, /pending\.token/);
      });

      it('reports a record that belongs to another PF', async () => {
        const pf = await planted((rec) => {
          rec['pf'] = '0000:ff:1f.7';
        });
        await expectCorrupt(pf, /belongs to another PF/);
      });

      it('reports inconsistent generation numbers', async () => {
        const pf = await planted((rec) => {
          rec['lastGeneration'] = 1;
          (rec['active'] as Record<string, unknown>)['generation'] = 5;
        });
        await expectCorrupt(pf, /generation numbers are inconsistent/);
      });
    });
  });
}
