/**
 * D-Bus error replies back into VfbError, so the CLI and the hook report a broker refusal with the
 * same code, message and exit status the broker meant, and a bus-level refusal (no broker, policy,
 * limits) with a code of the right family and a message that says what to do.
 *
 * It works on the reply's error name and body as sent, so that both clients use it: the CLI's
 * (dbus-next, client.ts) and the hook's wire client (wire/), whose bundle must not embed dbus-next.
 */
import { DBUS_ERROR_PREFIX, ERROR_KINDS, VfbError, type ErrorCode } from '../errors.js';
import { BUS_NAME } from './protocol.js';

type DbusErrorSuffix = (typeof ERROR_KINDS)[ErrorCode]['dbus'];

/** The code to use when a reply names only the family (a broker that did not send its code). */
const FAMILY_CODE: Record<DbusErrorSuffix, ErrorCode> = {
  InvalidArgument: 'INVALID_ARGUMENT',
  NotFound: 'NOT_FOUND',
  Denied: 'DENIED',
  Busy: 'BUSY',
  Unavailable: 'UNAVAILABLE',
  Failed: 'INTERNAL',
  Internal: 'INTERNAL',
};

const BUS_ERROR_PREFIX = 'org.freedesktop.DBus.Error.';

/**
 * Maps an ERROR reply to a call of `member`: the error name, and the body's values (a broker error
 * carries (message, code, hint), the bus's own errors a message). `cause` is kept for debugging.
 */
export function errorFromReply(
  errorName: string,
  body: readonly unknown[],
  member: string,
  cause?: unknown,
): VfbError {
  if (errorName.startsWith(DBUS_ERROR_PREFIX))
    return brokerError(errorName, body, errorName.slice(DBUS_ERROR_PREFIX.length), cause);
  if (errorName.startsWith(BUS_ERROR_PREFIX))
    return busError(errorName, errorName.slice(BUS_ERROR_PREFIX.length), member, cause);
  return new VfbError('INTERNAL', `${member} failed with the unexpected D-Bus error ${errorName}`, { cause });
}

function brokerError(errorName: string, body: readonly unknown[], suffix: string, cause: unknown): VfbError {
  const [text, code, hint] = body;
  const family = Object.hasOwn(FAMILY_CODE, suffix) ? FAMILY_CODE[suffix as DbusErrorSuffix] : 'INTERNAL';
  // Trust the sent code only if it belongs to the family named by the error, so a reply can never
  // turn, say, a Denied into an exit status of another family.
  const exact =
    typeof code === 'string' &&
    Object.hasOwn(ERROR_KINDS, code) &&
    ERROR_KINDS[code as ErrorCode].dbus === suffix
      ? (code as ErrorCode)
      : family;
  const message = typeof text === 'string' && text !== '' ? text : `the broker answered ${errorName}`;
  return new VfbError(exact, message, {
    ...(typeof hint === 'string' && hint !== '' ? { hint } : {}),
    // The broker answered: whatever failed, it was not the way to the broker.
    details: { repliedBy: 'broker' },
    cause,
  });
}

function busError(errorName: string, name: string, member: string, cause: unknown): VfbError {
  const opts = { cause };
  switch (name) {
    case 'ServiceUnknown':
    case 'NameHasNoOwner':
      return new VfbError('UNAVAILABLE', `the vfbroker broker is not running (${BUS_NAME} has no owner)`, {
        ...opts,
        hint: 'start it with `systemctl start vfbroker`, then retry',
      });
    case 'NoReply':
    case 'Disconnected':
    case 'NoServer':
    case 'Timeout':
    case 'TimedOut':
      return new VfbError('UNAVAILABLE', `the broker did not answer ${member} (${name})`, opts);
    case 'AccessDenied':
      return new VfbError('DENIED', `the D-Bus policy does not let this user call ${member}`, {
        ...opts,
        hint: `run as root; only ListPfs, Status, GetToken and SetNumVfs are open to other users`,
      });
    case 'LimitsExceeded':
      return new VfbError('BUSY', `the bus refused ${member}: too many calls in flight (${name})`, opts);
    case 'UnknownMethod':
    case 'UnknownObject':
    case 'UnknownInterface':
      return new VfbError('UNAVAILABLE', `the running broker does not offer ${member}`, {
        ...opts,
        hint: 'the broker and this client come from different vfbroker versions; restart the broker after upgrading',
      });
    case 'InvalidArgs':
      return new VfbError('INVALID_ARGUMENT', `the broker refused the arguments of ${member}`, opts);
    default:
      if (name.startsWith('Spawn.')) {
        return new VfbError('UNAVAILABLE', `the bus could not start the broker (${name})`, {
          ...opts,
          hint: 'see `systemctl status vfbroker` and `journalctl -u vfbroker`',
        });
      }
      return new VfbError('INTERNAL', `${member} failed with the unexpected D-Bus error ${errorName}`, opts);
  }
}
