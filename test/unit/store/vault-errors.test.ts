/**
 * How Vault's answers become VfbErrors: each status and transport failure its code and one line, and
 * nothing token-shaped carried over from Vault's error text.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { replyError, transportError, vaultErrorStrings } from '../../../src/broker/store/vault-errors.js';

const S = 'Vault at https://vault:8200';
const OP = 'read secret/data/vfbroker/h/pf/0000:3b:00.0';
const errors = (...e: string[]) => ({ errors: e });

describe('Vault errors', () => {
  const replies: Array<[number, unknown, string, string]> = [
    [
      400,
      errors('check-and-set parameter did not match the current version'),
      'CONFLICT',
      'check-and-set did not match the current version (HTTP 400)',
    ],
    [403, errors('1 error occurred:\n\t* permission denied\n\n'), 'DENIED', 'permission denied (HTTP 403)'],
    [403, null, 'DENIED', 'permission denied (HTTP 403)'],
    [404, errors(), 'NOT_FOUND', 'not found (HTTP 404)'],
    [503, errors('Vault is sealed'), 'SEALED', 'Vault is sealed (HTTP 503)'],
    [503, errors('standby node'), 'UNAVAILABLE', 'standby node (HTTP 503)'],
    [500, errors('internal error'), 'UNAVAILABLE', 'internal error (HTTP 500)'],
    [429, errors('rate limit quota exceeded'), 'UNAVAILABLE', 'rate limit quota exceeded (HTTP 429)'],
    [405, '<html>', 'UNAVAILABLE', 'no error text (HTTP 405)'],
  ];
  for (const [status, body, code, why] of replies) {
    it(`maps HTTP ${status} ${JSON.stringify(body).slice(0, 40)} to ${code}`, () => {
      const err = replyError(S, OP, { status, body });
      assert.equal(err.code, code);
      assert.equal(err.message, `${S}: cannot ${OP}: ${why}`);
      assert.equal(err.details['status'], status);
      assert.equal(err.cause, undefined);
    });
  }

  const transports: Array<[string, string, string]> = [
    ['ECONNREFUSED', 'UNAVAILABLE', 'connection failed (ECONNREFUSED)'],
    ['ECONNRESET', 'UNAVAILABLE', 'connection failed (ECONNRESET)'],
    ['ERR_BAD_RESPONSE', 'UNAVAILABLE', 'the answer was cut off (ERR_BAD_RESPONSE)'],
    ['ECONNABORTED', 'TIMEOUT', 'no answer within 5000 ms'],
    ['ETIMEDOUT', 'TIMEOUT', 'no answer within 5000 ms'],
    [
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'UNAVAILABLE',
      'its TLS certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT)',
    ],
    [
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'UNAVAILABLE',
      'its TLS certificate is not trusted (ERR_TLS_CERT_ALTNAME_INVALID)',
    ],
  ];
  for (const [errno, code, why] of transports) {
    it(`maps ${errno} to ${code}, keeping nothing of the client error`, () => {
      const axiosLike = Object.assign(new Error('boom'), {
        code: errno,
        config: { headers: { 'X-Vault-Token': 'hvs.CAESIsecretsecretsecret' } },
      });
      const err = transportError(S, OP, axiosLike, 5000);
      assert.equal(err.code, code);
      assert.equal(err.message, `${S}: cannot ${OP}: ${why}`);
      assert.deepEqual(err.details, { errno });
      assert.equal(err.cause, undefined);
    });
  }

  it('reduces an error without a usable code to EUNKNOWN', () => {
    assert.deepEqual(transportError(S, OP, { code: 'not a code; X-Vault-Token: x' }, 1).details, {
      errno: 'EUNKNOWN',
    });
    assert.deepEqual(transportError(S, OP, null, 1).details, { errno: 'EUNKNOWN' });
  });

  it('cuts token-shaped text out of Vault error strings', () => {
    const said = vaultErrorStrings(
      errors(
        'bad token hvs.CAESIJlWh0f4yKJZqkQ1 for role',
        'secret id 3f0c1d2e-9a8b-4c7d-8e6f-5a4b3c2d1e0f invalid',
        'legacy s.AbCdEfGhIjKlMnOpQrStUvWx token',
        'x'.repeat(500),
        'a fifth one',
      ),
    );
    assert.deepEqual(said, [
      'bad token [redacted] for role',
      'secret id [redacted] invalid',
      'legacy [redacted] token',
    ]);
    assert.equal(vaultErrorStrings(errors('y'.repeat(500)))[0]?.length, 160);
    assert.deepEqual(vaultErrorStrings({ errors: [1, null, ''] }), []);
    assert.deepEqual(vaultErrorStrings('not json'), []);
  });
});
