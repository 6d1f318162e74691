/**
 * The PF holder's protocol on stdin/stdout: JSON lines, one reply per request, in request order.
 *
 *   {"op":"set-token","token":"<uuid>"}  → {"ok":true} | {"ok":false,"errno":"EACCES","message":"…"}
 *   {"op":"status"}                      → {"ok":true,"pf":"…","open":true,"tokenSet":true}
 *
 * Before the first request the holder prints one HolderReady line. Nothing here echoes any part of a
 * request: a token may sit anywhere in a malformed line.
 */
import { VfbError, isVfbError } from '../errors.js';

export type HolderRequest = { readonly op: 'set-token'; readonly token: string } | { readonly op: 'status' };

export interface HolderFailure {
  readonly ok: false;
  /** The kernel's errno name (EACCES, EINVAL, ENOTTY…), or EINVAL for a malformed request. */
  readonly errno: string;
  /** One line, never a token. */
  readonly message: string;
}

export type HolderReply =
  | { readonly ok: true }
  | { readonly ok: true; readonly pf: string; readonly open: boolean; readonly tokenSet: boolean }
  | HolderFailure;

export type HolderReady =
  | { readonly ready: true; readonly pf: string }
  | { readonly ready: false; readonly errno: string; readonly message: string };

/** Longer than any valid request (a set-token line is ~60 bytes); bounds what a confused peer can make us parse. */
export const MAX_REQUEST_LENGTH = 512;

export function parseRequest(line: string): HolderRequest {
  if (line.length > MAX_REQUEST_LENGTH)
    throw malformed(`request longer than ${MAX_REQUEST_LENGTH} characters`);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw malformed('request is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw malformed('request is not a JSON object');
  }
  const fields = Object.keys(value).sort().join(',');
  const op = (value as { op?: unknown }).op;
  if (op === 'status' && fields === 'op') return { op };
  if (op === 'set-token' && fields === 'op,token') {
    const token = (value as { token?: unknown }).token;
    if (typeof token !== 'string') throw malformed('set-token: "token" must be a string');
    return { op, token };
  }
  if (op === 'status' || op === 'set-token') {
    throw malformed(
      `${op}: unexpected or missing fields (expected ${op === 'status' ? '"op"' : '"op" and "token"'})`,
    );
  }
  throw malformed('unknown op (expected "set-token" or "status")');
}

/** The errno and message a failed request is answered with. */
export function failureOf(err: unknown): { readonly errno: string; readonly message: string } {
  if (!isVfbError(err)) return { errno: 'EIO', message: 'internal error in the PF holder' };
  const errno = err.details['errno'];
  if (typeof errno === 'string') return { errno, message: err.message };
  return { errno: err.code === 'INVALID_ARGUMENT' ? 'EINVAL' : 'EIO', message: err.message };
}

export function encodeLine(message: HolderReply | HolderReady): string {
  return `${JSON.stringify(message)}\n`;
}

function malformed(why: string): VfbError {
  return new VfbError('INVALID_ARGUMENT', `malformed request: ${why}`, { details: { errno: 'EINVAL' } });
}
