/**
 * The stored form of a PF's tokens and the state transitions on it, shared by every backend so that
 * Vault and the file store cannot drift apart. Transitions are pure: they take a record and return
 * the next one; the backend writes it with compare-and-set.
 *
 * Stored data (one KV v2 version, or one file):
 *   { schema: 1, pf, lastGeneration, active: {generation, token, createdAt},
 *     pending: {generation, token, createdAt} | null, history: [{generation, activatedAt}] }
 * `lastGeneration` is the counter: an abandoned pending generation's number is never handed out
 * again, so a generation number names exactly one token for ever.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { VfbError } from '../../errors.js';
import type { PciAddress } from '../../pci/address.js';
import {
  HISTORY_LIMIT,
  type GenerationActivation,
  type PendingRef,
  type PfTokens,
  type TokenGeneration,
} from './token-store.js';

export const RECORD_SCHEMA = 1;

/** Lower-case UUIDv4, the only form vfbroker generates and the form the kernel parses. */
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function isTokenUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_V4.test(value);
}

const isoTime = z.string().min(1).max(64);
const generationNumber = z.number().int().min(1);

const generationSchema = z.object({
  generation: generationNumber,
  token: z.string().regex(UUID_V4),
  createdAt: isoTime,
});

const recordSchema = z.object({
  schema: z.literal(RECORD_SCHEMA),
  pf: z.string(),
  lastGeneration: generationNumber,
  active: generationSchema,
  pending: generationSchema.nullable(),
  history: z.array(z.object({ generation: generationNumber, activatedAt: isoTime })).max(HISTORY_LIMIT),
});

export type TokenRecord = z.infer<typeof recordSchema>;

/**
 * Validates stored data. The error names the fields that are wrong, never their values: a field that
 * should hold a token may hold something close to one.
 */
export function parseRecord(pf: PciAddress, data: unknown, where: string, revision: number): TokenRecord {
  const parsed = recordSchema.safeParse(data);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(root)'))];
    return corrupt(pf, where, revision, `bad or missing ${fields.slice(0, 4).join(', ')}`);
  }
  const rec = parsed.data;
  if (rec.pf !== pf) return corrupt(pf, where, revision, 'it belongs to another PF');
  const newest = rec.pending?.generation ?? rec.active.generation;
  if (newest > rec.lastGeneration || (rec.pending && rec.pending.generation <= rec.active.generation)) {
    return corrupt(pf, where, revision, 'its generation numbers are inconsistent');
  }
  return rec;
}

/** STORE_CORRUPT for a record that cannot be used; `why` must never quote the stored data. */
export function corrupt(pf: PciAddress, where: string, revision: number, why: string): never {
  throw new VfbError('STORE_CORRUPT', `token record of PF ${pf} at ${where} is malformed: ${why}`, {
    details: { pf, revision },
  });
}

export function toPfTokens(pf: PciAddress, rec: TokenRecord, revision: number): PfTokens {
  return { pf, active: rec.active, pending: rec.pending, revision };
}

export function historyOf(rec: TokenRecord): GenerationActivation[] {
  return rec.history.map((h) => ({ generation: h.generation, activatedAt: h.activatedAt }));
}

function newGeneration(generation: number, now: Date): TokenGeneration {
  return { generation, token: randomUUID(), createdAt: now.toISOString() };
}

export function firstRecord(pf: PciAddress, now: Date): TokenRecord {
  return {
    schema: RECORD_SCHEMA,
    pf,
    lastGeneration: 1,
    active: newGeneration(1, now),
    pending: null,
    history: [{ generation: 1, activatedAt: now.toISOString() }],
  };
}

export function withPending(pf: PciAddress, rec: TokenRecord, now: Date): TokenRecord {
  if (rec.pending) {
    throw new VfbError(
      'BUSY',
      `PF ${pf} already has pending generation ${rec.pending.generation}; promote or abandon it first`,
    );
  }
  const generation = rec.lastGeneration + 1;
  return { ...rec, lastGeneration: generation, pending: newGeneration(generation, now) };
}

export function promoted(pf: PciAddress, rec: TokenRecord, ref: PendingRef, now: Date): TokenRecord {
  const pending = expectPending(pf, rec, ref);
  const history = [...rec.history, { generation: pending.generation, activatedAt: now.toISOString() }];
  return { ...rec, active: pending, pending: null, history: history.slice(-HISTORY_LIMIT) };
}

export function abandoned(pf: PciAddress, rec: TokenRecord, ref: PendingRef): TokenRecord {
  expectPending(pf, rec, ref);
  return { ...rec, pending: null };
}

function expectPending(pf: PciAddress, rec: TokenRecord, ref: PendingRef): TokenGeneration {
  if (!rec.pending) {
    throw new VfbError(
      'NOT_FOUND',
      `PF ${pf} has no pending generation (active is ${rec.active.generation})`,
    );
  }
  if (rec.pending.generation !== ref.generation) {
    throw new VfbError(
      'CONFLICT',
      `PF ${pf} has pending generation ${rec.pending.generation}, not ${ref.generation}; re-read and retry`,
    );
  }
  return rec.pending;
}
