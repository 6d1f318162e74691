import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KernelError, VfbError } from '../../../src/errors.js';
import { MAX_REQUEST_LENGTH, encodeLine, failureOf, parseRequest } from '../../../src/pfholder/protocol.js';
import { assertNoSecretsIn } from '../../support/log-capture.js';

const TOKEN = '5f1c2a7e-8b3d-4c9e-a0f1-2b3c4d5e6f70';

function malformed(line: string): string {
  try {
    parseRequest(line);
  } catch (err) {
    assert.ok(err instanceof VfbError);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(err.details['errno'], 'EINVAL');
    assertNoSecretsIn(JSON.stringify({ m: err.message, d: err.details, h: err.hint }), [TOKEN], 'the error');
    return err.message;
  }
  assert.fail(`expected ${line} to be refused`);
}

describe('parseRequest', () => {
  it('reads the two requests of the protocol', () => {
    assert.deepEqual(parseRequest(`{"op":"set-token","token":"${TOKEN}"}`), {
      op: 'set-token',
      token: TOKEN,
    });
    assert.deepEqual(parseRequest(`{"token":"${TOKEN}","op":"set-token"}`), {
      op: 'set-token',
      token: TOKEN,
    });
    assert.deepEqual(parseRequest('{"op":"status"}'), { op: 'status' });
    assert.deepEqual(parseRequest(' {"op":"status"} \r'), { op: 'status' });
  });

  it("leaves the token as given: checking it is the holder's job", () => {
    assert.deepEqual(parseRequest('{"op":"set-token","token":"nope"}'), { op: 'set-token', token: 'nope' });
  });

  it('refuses malformed requests with a message that quotes nothing from the line', () => {
    assert.equal(malformed(`{"op":"set-token","token":"${TOKEN}"`), 'malformed request: request is not JSON');
    assert.equal(malformed(`["set-token","${TOKEN}"]`), 'malformed request: request is not a JSON object');
    assert.equal(malformed(`"${TOKEN}"`), 'malformed request: request is not a JSON object');
    assert.equal(malformed('null'), 'malformed request: request is not a JSON object');
    assert.equal(
      malformed(`{"op":"set-token","token":"${TOKEN}","pf":"0000:00:04.0"}`),
      'malformed request: set-token: unexpected or missing fields (expected "op" and "token")',
    );
    assert.equal(
      malformed('{"op":"set-token"}'),
      'malformed request: set-token: unexpected or missing fields (expected "op" and "token")',
    );
    assert.equal(
      malformed(`{"op":"status","token":"${TOKEN}"}`),
      'malformed request: status: unexpected or missing fields (expected "op")',
    );
    assert.equal(
      malformed('{"op":"set-token","token":42}'),
      'malformed request: set-token: "token" must be a string',
    );
    assert.equal(
      malformed(`{"op":"${TOKEN}"}`),
      'malformed request: unknown op (expected "set-token" or "status")',
    );
    assert.equal(
      malformed(`{"op":"get-token","pf":"${TOKEN}"}`),
      'malformed request: unknown op (expected "set-token" or "status")',
    );
  });

  it('refuses a line longer than any request before parsing it', () => {
    const line = `{"op":"status","pad":"${'x'.repeat(MAX_REQUEST_LENGTH)}"}`;
    assert.equal(malformed(line), `malformed request: request longer than ${MAX_REQUEST_LENGTH} characters`);
  });
});

describe('failureOf', () => {
  it('answers with the errno the kernel gave', () => {
    const err = new VfbError(
      'KERNEL_REFUSED',
      'VFIO_GROUP_GET_DEVICE_FD on device 0000:00:04.0 failed: EACCES',
      {
        details: { errno: 'EACCES', op: 'VFIO_GROUP_GET_DEVICE_FD', path: 'device 0000:00:04.0' },
      },
    );
    assert.deepEqual(failureOf(err), {
      errno: 'EACCES',
      message: 'VFIO_GROUP_GET_DEVICE_FD on device 0000:00:04.0 failed: EACCES',
    });
    assert.equal(failureOf(new KernelError('ENOENT', '/sys/x', 'cannot read x')).errno, 'ENOENT');
  });

  it('falls back to EINVAL for bad input and EIO for anything else', () => {
    assert.deepEqual(failureOf(new VfbError('INVALID_ARGUMENT', 'bad')), { errno: 'EINVAL', message: 'bad' });
    assert.deepEqual(failureOf(new VfbError('INTERNAL', 'oops')), { errno: 'EIO', message: 'oops' });
    assert.deepEqual(failureOf(new Error(`leaky ${TOKEN}`)), {
      errno: 'EIO',
      message: 'internal error in the PF holder',
    });
  });
});

describe('encodeLine', () => {
  it('writes one JSON object per line', () => {
    assert.equal(encodeLine({ ok: true }), '{"ok":true}\n');
    assert.equal(encodeLine({ ready: true, pf: '0000:00:04.0' }), '{"ready":true,"pf":"0000:00:04.0"}\n');
    assert.equal(
      encodeLine({ ok: false, errno: 'EACCES', message: 'a\nb' }),
      '{"ok":false,"errno":"EACCES","message":"a\\nb"}\n',
    );
  });
});
