import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { VfbError } from '../../src/errors.js';
import { isUuid, uuidToBytes } from '../../src/uuid.js';
import { assertNoSecretsIn } from '../support/log-capture.js';

describe('uuidToBytes', () => {
  it('gives the 16 bytes in the order the text spells them (uuid_parse, not GUID order)', () => {
    assert.deepEqual(
      [...uuidToBytes('2b0c0e7a-1d3c-4f6e-9a8b-00000000aabb')],
      [0x2b, 0x0c, 0x0e, 0x7a, 0x1d, 0x3c, 0x4f, 0x6e, 0x9a, 0x8b, 0, 0, 0, 0, 0xaa, 0xbb],
    );
  });

  it('reads upper and lower case alike, as the kernel does', () => {
    assert.deepEqual(
      uuidToBytes('BD8D9D2B-5A5F-4F5A-A211-F591514BA1F3'),
      uuidToBytes('bd8d9d2b-5a5f-4f5a-a211-f591514ba1f3'),
    );
  });

  it('round-trips any 16 bytes through the 8-4-4-4-12 text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        const hex = Buffer.from(bytes).toString('hex');
        const text = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
        assert.ok(isUuid(text));
        assert.deepEqual(uuidToBytes(text), bytes);
      }),
    );
  });

  it('refuses anything but a plain UUID, without echoing it', () => {
    for (const bad of [
      '',
      'bd8d9d2b5a5f4f5aa211f591514ba1f3',
      '{bd8d9d2b-5a5f-4f5a-a211-f591514ba1f3}',
      'urn:uuid:bd8d9d2b-5a5f-4f5a-a211-f591514ba1f3',
      'bd8d9d2b-5a5f-4f5a-a211-f591514ba1f3\n',
      ' bd8d9d2b-5a5f-4f5a-a211-f591514ba1f3',
      'bd8d9d2b-5a5f-4f5a-a211-f591514ba1fg',
      'bd8d9d2b-5a5f-4f5a-a2110-f591514ba1f',
    ]) {
      assert.throws(
        () => uuidToBytes(bad),
        (err: unknown) => {
          assert.ok(err instanceof VfbError);
          assert.equal(err.code, 'INVALID_ARGUMENT');
          assert.equal(err.message, 'the token is not a UUID (expected 8-4-4-4-12 hex digits)');
          assert.equal(err.details['errno'], 'EINVAL');
          if (bad.length >= 8)
            assertNoSecretsIn(JSON.stringify({ m: err.message, d: err.details }), [bad.trim()], 'the error');
          return true;
        },
      );
    }
  });
});
