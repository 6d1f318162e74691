/**
 * A refused sysfs operation as a VfbError. The errnos vfbroker tells apart become KernelError (the
 * type the rest of the code matches on); any other errno still comes back as KERNEL_REFUSED with the
 * errno in its details, so nothing the kernel said is lost.
 */
import { KERNEL_ERRNOS, KernelError, VfbError, toVfbError, type KernelErrno } from '../errors.js';

const KNOWN: ReadonlySet<string> = new Set(KERNEL_ERRNOS);

function isKernelErrno(errno: string): errno is KernelErrno {
  return KNOWN.has(errno);
}

/** The error for `errno` on `path`; `message` names the operation and never carries a token. */
export function kernelRefusal(errno: string, path: string, message: string, cause?: unknown): VfbError {
  const options = cause === undefined ? {} : { cause };
  if (isKernelErrno(errno)) return new KernelError(errno, path, message, options);
  return new VfbError('KERNEL_REFUSED', `${message} (${errno} on ${path})`, {
    ...options,
    details: { errno, path },
  });
}

/** The errno name of a Node fs error (`err.code`), or undefined for anything else. */
export function fsErrno(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]{1,15}$/.test(code) ? code : undefined;
}

/** A Node fs error from `path` as a kernel refusal; anything that is not an fs error as INTERNAL. */
export function fromFsError(err: unknown, path: string, message: string): VfbError {
  const errno = fsErrno(err);
  return errno === undefined ? toVfbError(err) : kernelRefusal(errno, path, message, err);
}

/** The errno a sysfs refusal carries (KernelError or not), if it is one. */
export function errnoOfRefusal(err: unknown): string | undefined {
  if (!(err instanceof VfbError) || err.code !== 'KERNEL_REFUSED') return undefined;
  const errno = err.details['errno'];
  return typeof errno === 'string' ? errno : undefined;
}
