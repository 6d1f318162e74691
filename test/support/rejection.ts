import assert from 'node:assert/strict';
import { VfbError } from '../../src/errors.js';

/** The VfbError a promise rejects with; fails the test when it resolves or rejects otherwise. */
export async function rejection(promise: Promise<unknown>): Promise<VfbError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof VfbError, String(err));
    return err;
  }
  assert.fail('expected a VfbError');
}
