/**
 * The error catalogue. Every failure vfbroker reports is a VfbError with a stable code; the code
 * decides the D-Bus error name a caller sees and the exit status of the CLI and the hook, so the
 * three surfaces can never disagree. docs/errors.md lists the same table and a test keeps the two
 * in sync.
 *
 * Messages are one line, safe to show to any caller, and never carry a token: callers build them
 * from addresses, paths and codes only. Details that help debugging go into `cause`, which is never
 * sent over the bus.
 */

export interface ErrorKind {
  /** Suffix of the D-Bus error name: org.vfbroker.Error.<dbus>. */
  readonly dbus: string;
  /** Exit status of the CLI and the hook (sysexits.h where one fits). */
  readonly exit: number;
  /** What a user can do about it, shown after the message. */
  readonly hint: string;
}

export const ERROR_KINDS = {
  INVALID_ARGUMENT: {
    dbus: 'InvalidArgument',
    exit: 64,
    hint: 'check the value against the format in the message',
  },
  CONFIG_INVALID: {
    dbus: 'InvalidArgument',
    exit: 78,
    hint: 'fix the file at the line and column shown, then retry',
  },
  NOT_FOUND: {
    dbus: 'NotFound',
    exit: 66,
    hint: 'check the name or address; `vfbroker pf status` lists what vfbroker knows',
  },
  DENIED: {
    dbus: 'Denied',
    exit: 77,
    hint: 'run as root, or grant the consumer in /etc/vfbroker/policy.yaml',
  },
  CONFLICT: {
    dbus: 'Busy',
    exit: 75,
    hint: 'another writer changed it first; re-read and retry',
  },
  BUSY: {
    dbus: 'Busy',
    exit: 75,
    hint: 'retry when the operation in progress has finished',
  },
  UNAVAILABLE: {
    dbus: 'Unavailable',
    exit: 69,
    hint: 'check that the service is running and reachable',
  },
  TIMEOUT: {
    dbus: 'Unavailable',
    exit: 75,
    hint: 'the other side did not answer in time; check its health or raise the timeout',
  },
  SEALED: {
    dbus: 'Unavailable',
    exit: 69,
    hint: 'unseal Vault (`vault operator unseal`), then retry',
  },
  KERNEL_REFUSED: {
    dbus: 'Failed',
    exit: 71,
    hint: 'the kernel refused the operation; the errno says why (see docs/errors.md)',
  },
  COMMAND_FAILED: {
    dbus: 'Failed',
    exit: 72,
    hint: 'an external command (PF driver or tool) failed; its output is in the broker log',
  },
  STORE_CORRUPT: {
    dbus: 'Failed',
    exit: 65,
    hint: 'the stored record is malformed; restore it from its history (`vault kv rollback`) or delete it, then `vfbroker pf up` creates a new token',
  },
  UNSAFE_FILE: {
    dbus: 'Failed',
    exit: 77,
    hint: 'fix the owner and mode of the file (root, no group or other access), then retry',
  },
  INTERNAL: {
    dbus: 'Internal',
    exit: 70,
    hint: 'this is a bug in vfbroker; the broker log has the details',
  },
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_KINDS;

export const DBUS_ERROR_PREFIX = 'org.vfbroker.Error.';

export interface VfbErrorOptions {
  readonly hint?: string;
  readonly cause?: unknown;
  /** Structured, token-free facts for tests and `--json` output (errno, path, file, line…). */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * Marks VfbErrors with a registry-wide symbol, so `instanceof VfbError` also holds for errors made
 * by another copy of this module: the hook bundle embeds the D-Bus client with its own copy.
 */
const BRAND = Symbol.for('vfbroker.VfbError');

export class VfbError extends Error {
  override readonly name = 'VfbError';
  readonly [BRAND] = true;

  static override [Symbol.hasInstance](value: unknown): boolean {
    // Subclasses (KernelError) inherit this: for them, the ordinary prototype check.
    if (this !== VfbError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
  }

  readonly code: ErrorCode;
  readonly hint: string;
  readonly details: Readonly<Record<string, string | number | boolean>>;

  constructor(code: ErrorCode, message: string, options: VfbErrorOptions = {}) {
    // One line, always: libvirt quotes the hook's stderr and D-Bus clients print the message as is.
    super(oneLine(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint ?? ERROR_KINDS[code].hint;
    this.details = Object.freeze({ ...options.details });
  }

  get dbusName(): string {
    return DBUS_ERROR_PREFIX + ERROR_KINDS[this.code].dbus;
  }

  get exitCode(): number {
    return ERROR_KINDS[this.code].exit;
  }
}

/** Kernel errnos vfbroker tells apart when a sysfs operation is refused. */
export const KERNEL_ERRNOS = [
  'EBUSY',
  'ERANGE',
  'ENOENT',
  'EINVAL',
  'EACCES',
  'ENODEV',
  'EPERM',
  'ENOSPC',
  'ENOTTY',
  'EBADF',
  'ENOMEM',
  'EIO',
] as const;
export type KernelErrno = (typeof KERNEL_ERRNOS)[number];

export class KernelError extends VfbError {
  readonly errno: KernelErrno;
  readonly path: string;

  constructor(
    errno: KernelErrno,
    path: string,
    message: string,
    options: Omit<VfbErrorOptions, 'details'> = {},
  ) {
    super('KERNEL_REFUSED', `${message} (${errno} on ${path})`, { ...options, details: { errno, path } });
    this.errno = errno;
    this.path = path;
  }
}

/** Whatever was thrown, as a VfbError: unknown errors become INTERNAL and keep the original as cause. */
export function toVfbError(err: unknown): VfbError {
  if (err instanceof VfbError) return err;
  return new VfbError('INTERNAL', 'unexpected internal error', { cause: err });
}

export function isVfbError(err: unknown, code?: ErrorCode): err is VfbError {
  return err instanceof VfbError && (code === undefined || err.code === code);
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+\s*/g, ' ').trim();
}
