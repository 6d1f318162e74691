/**
 * The errors a D-Bus connection reports about itself, shared by both clients (dbus-next's in
 * ../connection.ts and the hook's wire client), so the CLI and the hook say the same thing about
 * the same failure. A call is described as `DESTINATION INTERFACE.MEMBER`, never by its arguments,
 * which may hold a token.
 */
import { VfbError } from '../../errors.js';

/** Connecting, authenticating or saying Hello failed: `err` is the socket error, if there was one. */
export function cannotConnect(address: string, err: unknown): VfbError {
  const code = (err as { code?: unknown } | undefined)?.code;
  const why = typeof code === 'string' ? code : err instanceof Error ? 'authentication failed' : 'closed';
  return new VfbError('UNAVAILABLE', `cannot connect to the D-Bus bus at ${address}: ${why}`, { cause: err });
}

export function busDidNotAnswer(address: string, timeoutMs: number): VfbError {
  return new VfbError('TIMEOUT', `no answer from the D-Bus bus at ${address} within ${timeoutMs} ms`);
}

export function noReply(call: string, timeoutMs: number): VfbError {
  return new VfbError('TIMEOUT', `no reply from ${call} within ${timeoutMs} ms`);
}

export function closedBefore(call: string, cause: unknown): VfbError {
  return new VfbError('UNAVAILABLE', `the D-Bus connection closed before ${call} answered`, { cause });
}

/** The marshaller refused the arguments. Its own message may quote a value (a token): not used. */
export function argumentsDoNotFit(call: string): VfbError {
  return new VfbError('INVALID_ARGUMENT', `the arguments of ${call} do not fit its signature`, {
    hint: 'strings must not contain NUL; numbers must fit their D-Bus type',
  });
}
