import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REDACTED, auditLogger } from '../../src/log.js';
import { VfbError } from '../../src/errors.js';
import { captureLogs } from '../support/log-capture.js';

const TOKEN = '6f1c0a52-8d3e-4b7a-9c21-0e5d4f3a2b1c';
const VAULT_TOKEN = 'hvs.CAESIJ1vaultTokenValue0123456789';

describe('logger', () => {
  it('redacts secret fields at the top level and one level down', () => {
    const logs = captureLogs();
    logs.logger.info({ token: TOKEN, pf: '0000:3b:00.0' }, 'applied');
    logs.logger.info(
      { auth: { client_token: VAULT_TOKEN }, body: { secret_id: 'abcdef012345678' } },
      'login',
    );
    logs.logger.info(
      { headers: { 'X-Vault-Token': VAULT_TOKEN, authorization: `Bearer ${VAULT_TOKEN}` } },
      'req',
    );
    logs.assertNoSecrets([TOKEN, VAULT_TOKEN, 'abcdef012345678']);
    const [first] = logs.records();
    assert.equal(first?.['token'], REDACTED);
    assert.equal(first?.['pf'], '0000:3b:00.0');
  });

  it('the audit logger marks its lines and redacts top-level secret fields', () => {
    const logs = captureLogs();
    auditLogger(logs.logger).info(
      { event: 'prepare', token: TOKEN, vfToken: TOKEN, vf: '0000:3b:10.0' },
      'x',
    );
    logs.assertNoSecrets([TOKEN]);
    const [line] = logs.records();
    assert.deepEqual(
      [line?.['audit'], line?.['token'], line?.['vfToken'], line?.['vf']],
      [true, REDACTED, REDACTED, '0000:3b:10.0'],
    );
  });

  it('logs errors as type, code and message only, never their cause or extra fields', () => {
    const logs = captureLogs();
    const leaky = Object.assign(new Error('request failed'), {
      config: { headers: { 'X-Vault-Token': VAULT_TOKEN } },
    });
    logs.logger.error({ err: new VfbError('UNAVAILABLE', 'Vault unreachable', { cause: leaky }) }, 'store');
    logs.logger.error({ err: leaky }, 'raw');
    logs.assertNoSecrets([VAULT_TOKEN]);
    const [rec] = logs.records();
    assert.deepEqual(rec?.['err'], {
      type: 'VfbError',
      message: 'Vault unreachable',
      code: 'UNAVAILABLE',
      details: {},
    });
  });

  it('the capture helper catches a leak (the check can fail)', () => {
    const logs = captureLogs();
    logs.logger.info(`oops ${TOKEN}`);
    assert.throws(() => logs.assertNoSecrets([TOKEN]), /a secret appeared in log output/);
  });
});
