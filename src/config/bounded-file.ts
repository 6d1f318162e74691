/**
 * Reading a config file whole, with a cap: the file is untrusted, and everything after the read
 * (parser, validator) costs in proportion to its size.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { readCapped } from '../capped-read.js';
import { VfbError } from '../errors.js';
import { configError, type SourceLocation } from './config-error.js';

/** A file's text, refusing anything but a regular file of at most maxBytes of UTF-8. */
export async function readBoundedText(path: string, maxBytes: number): Promise<string> {
  const whole: SourceLocation = { file: path, line: 1, column: 1 };
  let handle;
  try {
    // Non-blocking, so that a FIFO put where a config file belongs is refused below, not waited on.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new VfbError('CONFIG_INVALID', `${path}: cannot open the file (${errnoOf(err)})`, {
      cause: err,
      details: { file: path },
      hint: 'check that the file exists and that vfbroker may read it',
    });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw configError(whole, '', 'not a regular file');
    const bytes = await readCapped(handle, stat.size, maxBytes);
    const length = bytes.length;
    if (length > maxBytes || stat.size > maxBytes) {
      throw configError(
        whole,
        '',
        `the file is larger than ${formatBytes(maxBytes)} (${formatBytes(Math.max(stat.size, length))})`,
      );
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (err) {
      throw configError(whole, '', 'the file is not valid UTF-8', err);
    }
  } catch (err) {
    if (err instanceof VfbError) throw err;
    throw new VfbError('CONFIG_INVALID', `${path}: cannot read the file (${errnoOf(err)})`, {
      cause: err,
      details: { file: path },
    });
  } finally {
    await handle.close();
  }
}

function errnoOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1).replace(/\.0$/, '')} MiB` : `${n} bytes`;
}
