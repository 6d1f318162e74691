/**
 * D-Bus error replies back into VfbError, so the CLI and the hook report a broker refusal with the
 * same code, message and exit status the broker meant, and a bus-level refusal (no broker, policy,
 * limits) with a code of the right family and a message that says what to do.
 */
import { DBusError } from 'dbus-next';
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

/** Maps whatever a call to `member` rejected with; VfbErrors (TIMEOUT, UNAVAILABLE…) pass unchanged. */
export function errorFromReply(err: unknown, member: string): VfbError {
  if (err instanceof VfbError) return err;
  if (!(err instanceof DBusError)) {
    return new VfbError('INTERNAL', `${member} failed unexpectedly`, { cause: err });
  }
  if (err.type.startsWith(DBUS_ERROR_PREFIX))
    return brokerError(err, err.type.slice(DBUS_ERROR_PREFIX.length));
  if (err.type.startsWith(BUS_ERROR_PREFIX))
    return busError(err, err.type.slice(BUS_ERROR_PREFIX.length), member);
  return new VfbError('INTERNAL', `${member} failed with the unexpected D-Bus error ${err.type}`, {
    cause: err,
  });
}

function brokerError(err: DBusError, suffix: string): VfbError {
  const body = (err.reply as { body?: unknown[] } | null | undefined)?.body ?? [];
  const [, code, hint] = body;
  const family = Object.hasOwn(FAMILY_CODE, suffix) ? FAMILY_CODE[suffix as DbusErrorSuffix] : 'INTERNAL';
  // Trust the sent code only if it belongs to the family named by the error, so a reply can never
  // turn, say, a Denied into an exit status of another family.
  const exact =
    typeof code === 'string' &&
    Object.hasOwn(ERROR_KINDS, code) &&
    ERROR_KINDS[code as ErrorCode].dbus === suffix
      ? (code as ErrorCode)
      : family;
  return new VfbError(exact, err.text || `the broker answered ${err.type}`, {
    ...(typeof hint === 'string' && hint !== '' ? { hint } : {}),
    cause: err,
  });
}

function busError(err: DBusError, name: string, member: string): VfbError {
  const opts = { cause: err };
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
      return new VfbError('INTERNAL', `${member} failed with the unexpected D-Bus error ${err.type}`, opts);
  }
}
