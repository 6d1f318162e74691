/**
 * A logger whose output stays in memory, so a test can read every line the code under test wrote and
 * assert that no secret reached any of them. Use it wherever a token or a Vault token is in play.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

export interface CapturedLogs {
  readonly logger: Logger;
  /** Raw JSON lines, in order. */
  readonly lines: string[];
  /** Parsed lines. */
  records(): Record<string, unknown>[];
  /** Fails if any secret appears anywhere in the output, in any case. */
  assertNoSecrets(secrets: readonly string[]): void;
}

export function captureLogs(level: 'trace' | 'debug' | 'info' = 'trace'): CapturedLogs {
  const lines: string[] = [];
  let partial = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      partial += chunk.toString('utf8');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        lines.push(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
      done();
    },
  });
  // pino writes synchronously to a plain Writable, so lines are visible as soon as the call returns.
  const logger = createLogger({ level, destination: stream });
  return {
    logger,
    lines,
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    assertNoSecrets(secrets) {
      assertNoSecretsIn(lines.join('\n'), secrets, 'log output');
    },
  };
}

/** Fails if any secret (case-insensitively, also without dashes) occurs in text. */
export function assertNoSecretsIn(text: string, secrets: readonly string[], where: string): void {
  const hay = text.toLowerCase();
  for (const secret of secrets) {
    if (secret.length < 8) throw new Error(`assertNoSecretsIn: refusing to search for a short secret`);
    const s = secret.toLowerCase();
    assert.ok(!hay.includes(s), `a secret appeared in ${where}`);
    assert.ok(!hay.includes(s.replaceAll('-', '')), `a secret (without dashes) appeared in ${where}`);
  }
}
