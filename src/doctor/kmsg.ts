/**
 * The kernel log, read from /dev/kmsg the way `dmesg` does it, without running dmesg: open it
 * non-blocking, read one record per read(2) until EAGAIN (nothing more to read), keep each record's
 * message. A record is `prio,seq,usec,flags;message` followed by ` KEY=value` continuation lines
 * (Documentation/ABI/testing/dev-kmsg). EPIPE means the ring buffer overwrote the record being read:
 * the next read goes on from the oldest one left.
 *
 * Reading needs CAP_SYSLOG when kernel.dmesg_restrict is 1 (the default on Debian); without it the
 * log is reported as unreadable rather than as an error.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import type { KernelLog } from './environment.js';

export const KMSG = '/dev/kmsg';
/** The kernel's log buffer holds a few thousand lines; keep as many of the latest. */
const MAX_LINES = 20_000;
/** One record per read, and EINVAL for a buffer too small for it: 8 KiB is the kernel's bound (CONSOLE_EXT_LOG_MAX). */
const RECORD_BYTES = 8192;

export async function readKernelLog(path = KMSG): Promise<KernelLog> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return { readable: false, reason: `cannot open ${path}: ${codeOf(err)}` };
  }
  const lines: string[] = [];
  const buf = Buffer.alloc(RECORD_BYTES);
  // /dev/kmsg ends every read with a whole record; a regular file (a saved log) may cut a line.
  let partial = '';
  const decoder = new StringDecoder('utf8');
  try {
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buf, 0, buf.length, null));
      } catch (err) {
        const code = codeOf(err);
        if (code === 'EAGAIN') break;
        if (code === 'EPIPE') continue;
        return { readable: false, reason: `cannot read ${path}: ${code}` };
      }
      // A regular file ends; /dev/kmsg answers EAGAIN instead.
      if (bytesRead === 0) break;
      const text = partial + decoder.write(buf.subarray(0, bytesRead));
      const end = text.lastIndexOf('\n') + 1;
      partial = text.slice(end);
      lines.push(...messagesOf(text.slice(0, end)));
      if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
    }
  } finally {
    await handle.close();
  }
  return { readable: true, lines: [...lines, ...messagesOf(partial)] };
}

/** The message of each record in `text`; continuation lines (leading space) carry metadata only. */
export function messagesOf(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith(' '))
    .map((line) => line.slice(line.indexOf(';') + 1));
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}
