/**
 * Reads the hook's stdin (libvirt writes the domain XML and closes it) with a size cap and a
 * deadline, so neither a huge input nor a writer that never closes can keep the hook running or
 * make it buffer more than the cap. Over the cap, reading stops at once: libvirt ignores EPIPE on a
 * hook's stdin (virCommandProcessIO), and the input would be refused anyway.
 */
import { VfbError } from '../errors.js';

export async function readBounded(
  source: AsyncIterable<Uint8Array>,
  maxBytes: number,
  signal: AbortSignal,
  what: string,
): Promise<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const stop = () => {
    // Not awaited: a stream that never ends may never settle return() either.
    void iterator.return?.()?.catch(() => undefined);
  };
  try {
    for (;;) {
      const next = await untilAborted(
        iterator.next(),
        signal,
        () => new VfbError('TIMEOUT', `${what} was not closed before the hook's deadline`),
      );
      if (next.done) break;
      const chunk: unknown = next.value;
      if (!(chunk instanceof Uint8Array))
        throw new VfbError('INVALID_ARGUMENT', `${what} is not a byte stream`);
      size += chunk.length;
      if (size > maxBytes) {
        throw new VfbError('INVALID_ARGUMENT', `${what} is larger than ${maxBytes} bytes`, {
          hint: 'libvirt domain XML is far smaller; check what is writing to the hook',
        });
      }
      chunks.push(chunk);
    }
  } catch (err) {
    stop();
    if (err instanceof VfbError) throw err;
    const code = (err as { code?: unknown }).code;
    throw new VfbError(
      'UNAVAILABLE',
      `${what} could not be read (${typeof code === 'string' ? code : 'read error'})`,
      {
        cause: err,
      },
    );
  }
  return Buffer.concat(chunks, size);
}

/** Settles like `promise`, or rejects with `onAbort()` when `signal` aborts first. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, onAbort: () => Error): Promise<T> {
  if (signal.aborted) return Promise.reject(onAbort());
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(onAbort());
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
