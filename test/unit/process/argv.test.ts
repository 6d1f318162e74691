import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  commandName,
  plainArgv,
  redactSecrets,
  renderArgv,
  secret,
  secretsOf,
} from '../../../src/process/argv.js';

const TOKEN = '2f7c1c4e-9a51-4d8e-b7a2-1d6f0c3e9b55';

describe('argv', () => {
  it('renders secrets as <redacted>, keeping their visible prefix', () => {
    const argv = ['pf_bb_config', 'ACC100', '-v', secret(TOKEN), secret(TOKEN, '--vfio-vf-token=')] as const;
    assert.equal(renderArgv(argv), 'pf_bb_config ACC100 -v <redacted> --vfio-vf-token=<redacted>');
    assert.deepEqual(plainArgv(argv), ['pf_bb_config', 'ACC100', '-v', TOKEN, `--vfio-vf-token=${TOKEN}`]);
    assert.deepEqual(secretsOf(argv), [TOKEN, TOKEN]);
  });

  it('quotes what a shell would split, so a rendered command can be pasted', () => {
    assert.equal(
      renderArgv(['/usr/bin/app', 'two words', "it's", '-a', '0000:3b:00.0']),
      `/usr/bin/app 'two words' 'it'\\''s' -a 0000:3b:00.0`,
    );
  });

  it('scrubs every occurrence of a secret from output', () => {
    assert.equal(
      redactSecrets(`EAL: --vfio-vf-token=${TOKEN} (${TOKEN})`, [TOKEN]),
      'EAL: --vfio-vf-token=<redacted> (<redacted>)',
    );
    assert.equal(redactSecrets('nothing here', [TOKEN, '']), 'nothing here');
  });

  it('names the executable without its directory', () => {
    assert.equal(commandName(['/usr/sbin/devlink', 'dev']), 'devlink');
    assert.equal(commandName(['ip']), 'ip');
  });
});
