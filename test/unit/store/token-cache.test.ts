/**
 * TokenCache: one store read per PF generation, shared by concurrent callers; set() and invalidate()
 * decide what is served next. The fake store below answers every read with a new revision, so a
 * cached answer is recognisable by its revision.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenCache } from '../../../src/broker/store/token-cache.js';
import type { PfTokens, TokenStore } from '../../../src/broker/store/token-store.js';
import { VfbError } from '../../../src/errors.js';
import { parsePciAddress, type PciAddress } from '../../../src/pci/address.js';

const PF = parsePciAddress('0000:3b:00.0');
const OTHER = parsePciAddress('0000:5e:00.0');

function tokensAt(pf: PciAddress, revision: number): PfTokens {
  const token = `00000000-0000-4000-8000-${revision.toString().padStart(12, '0')}`;
  return {
    pf,
    active: { generation: 1, token, createdAt: '2030-01-01T00:00:00.000Z' },
    pending: null,
    revision,
  };
}

/** A store whose every read sees a newer revision; reads can be held until release() is called. */
function changingStore(options: { failFirst?: boolean; hold?: boolean } = {}) {
  let revision = 0;
  let failNext = options.failFirst ?? false;
  const held: Array<() => void> = [];
  const store = {
    async read(pf: PciAddress): Promise<PfTokens> {
      const mine = ++revision;
      if (options.hold) await new Promise<void>((resolve) => held.push(resolve));
      if (failNext) {
        failNext = false;
        throw new VfbError('UNAVAILABLE', 'Vault is down');
      }
      return tokensAt(pf, mine);
    },
  } as unknown as TokenStore;
  return { store, release: () => held.splice(0).forEach((r) => r()) };
}

describe('TokenCache', () => {
  it('serves the first read until told otherwise', async () => {
    const cache = new TokenCache(changingStore().store);
    assert.equal((await cache.get(PF)).revision, 1);
    assert.equal((await cache.get(PF)).revision, 1);
    assert.equal((await cache.active(PF)).token, tokensAt(PF, 1).active.token);
    assert.equal((await cache.get(OTHER)).revision, 2);
  });

  it('shares one read among a hundred concurrent callers', async () => {
    const { store, release } = changingStore({ hold: true });
    const cache = new TokenCache(store);
    const waiting = Array.from({ length: 100 }, () => cache.get(PF));
    release();
    const revisions = new Set((await Promise.all(waiting)).map((t) => t.revision));
    assert.deepEqual([...revisions], [1]);
  });

  it('reads again after invalidate()', async () => {
    const cache = new TokenCache(changingStore().store);
    await cache.get(PF);
    cache.invalidate(PF);
    assert.equal((await cache.get(PF)).revision, 2);
    cache.clear();
    assert.equal((await cache.get(PF)).revision, 3);
  });

  it('serves what set() was given, without a read', async () => {
    const cache = new TokenCache(changingStore().store);
    cache.set(tokensAt(PF, 42));
    assert.equal((await cache.get(PF)).revision, 42);
  });

  it('does not cache a failed read', async () => {
    const cache = new TokenCache(changingStore({ failFirst: true }).store);
    await assert.rejects(cache.get(PF), { code: 'UNAVAILABLE' });
    assert.equal((await cache.get(PF)).revision, 2);
  });

  it('does not cache a read that was under way when the PF was invalidated', async () => {
    const { store, release } = changingStore({ hold: true });
    const cache = new TokenCache(store);
    const stale = cache.get(PF);
    cache.invalidate(PF);
    const fresh = cache.get(PF);
    release();
    assert.equal((await stale).revision, 1);
    assert.equal((await fresh).revision, 2);
    assert.equal((await cache.get(PF)).revision, 2);
  });

  it('keeps what set() was given over a read that finishes later', async () => {
    const { store, release } = changingStore({ hold: true });
    const cache = new TokenCache(store);
    const reading = cache.get(PF);
    cache.set(tokensAt(PF, 42));
    release();
    await reading;
    assert.equal((await cache.get(PF)).revision, 42);
  });
});
