import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VfbError } from '../../../src/errors.js';
import { parsePciAddress } from '../../../src/pci/address.js';
import type { HolderStatus, TokenHolder } from '../../../src/pfholder/holder.js';
import { serve } from '../../../src/pfholder/serve.js';
import { uuidToBytes } from '../../../src/uuid.js';
import { captureLogs } from '../../support/log-capture.js';

const PF = parsePciAddress('0000:00:04.0');
const A = '0b5e9a36-3f0c-4f7e-9d55-6a1d8f2c0a11';
const B = '7c2d4e6f-8a9b-4c0d-8e1f-2a3b4c5d6e7f';
const REFUSED = 'c0ffee00-1111-4222-8333-444444444444';

/** Answers like the kernel would for a PF whose VF is open under token A: B is accepted, REFUSED is not. */
class FakeHolder implements TokenHolder {
  private current: Uint8Array | null = null;
  closed = false;

  setToken(token: string): void {
    const bytes = uuidToBytes(token);
    if (token === REFUSED) {
      throw new VfbError('KERNEL_REFUSED', `VFIO_GROUP_GET_DEVICE_FD on device ${PF} failed: EACCES`, {
        details: { errno: 'EACCES' },
      });
    }
    this.current = bytes;
  }

  status(): HolderStatus {
    return { open: this.current !== null, tokenSet: this.current !== null };
  }

  close(): void {
    this.closed = true;
  }
}

async function* linesOf(...lines: string[]): AsyncGenerator<string> {
  for (const line of lines) {
    await Promise.resolve();
    yield line;
  }
}

async function run(
  ...lines: string[]
): Promise<{ replies: unknown[]; logs: ReturnType<typeof captureLogs> }> {
  const logs = captureLogs();
  const out: string[] = [];
  await serve(linesOf(...lines), (line) => out.push(line), PF, new FakeHolder(), logs.logger);
  for (const line of out)
    assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), 'one line per reply');
  return { replies: out.map((l) => JSON.parse(l) as unknown), logs };
}

describe('serve', () => {
  it('answers every request in order, and status follows the token', async () => {
    const { replies, logs } = await run(
      '{"op":"status"}',
      `{"op":"set-token","token":"${A}"}`,
      '{"op":"status"}',
      `{"op":"set-token","token":"${B}"}`,
    );
    assert.deepEqual(replies, [
      { ok: true, pf: PF, open: false, tokenSet: false },
      { ok: true },
      { ok: true, pf: PF, open: true, tokenSet: true },
      { ok: true },
    ]);
    logs.assertNoSecrets([A, B]);
  });

  it('answers a refused request with the errno and carries on', async () => {
    const { replies, logs } = await run(
      `{"op":"set-token","token":"${REFUSED}"}`,
      'not json',
      `{"op":"set-token","token":"${A}x"}`,
      '{"op":"status"}',
    );
    assert.deepEqual(replies, [
      { ok: false, errno: 'EACCES', message: `VFIO_GROUP_GET_DEVICE_FD on device ${PF} failed: EACCES` },
      { ok: false, errno: 'EINVAL', message: 'malformed request: request is not JSON' },
      { ok: false, errno: 'EINVAL', message: 'the token is not a UUID (expected 8-4-4-4-12 hex digits)' },
      { ok: true, pf: PF, open: false, tokenSet: false },
    ]);
    logs.assertNoSecrets([REFUSED, A]);
    assert.deepEqual(
      logs.records().map((r) => r['errno']),
      ['EACCES', 'EINVAL', 'EINVAL'],
    );
  });

  it('skips blank lines instead of answering them', async () => {
    const { replies } = await run('', '   ', '{"op":"status"}');
    assert.deepEqual(replies, [{ ok: true, pf: PF, open: false, tokenSet: false }]);
  });
});
