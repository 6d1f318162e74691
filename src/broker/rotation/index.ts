/**
 * Token rotation, as the composition root builds it: `createRotator(deps)`, then `recover()` once
 * the PFs are up (it resumes or rolls back whatever the journal shows unfinished, then starts the
 * age schedule), `close()` at shutdown.
 */
import { JournaledRotator, type RotatorDeps } from './journaled-rotator.js';
import type { Rotator } from './rotator.js';

export type { Rotator, PfRotationStatus } from './rotator.js';
export type { RotatorDeps } from './journaled-rotator.js';
export type { DefinitionSync, SyncReport, SyncFailure } from './definition-sync.js';

export function createRotator(deps: RotatorDeps): Rotator {
  return new JournaledRotator(deps);
}
