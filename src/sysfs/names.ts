/**
 * Driver, module and module-parameter names end up as one component of a sysfs path
 * (`/sys/bus/pci/drivers/<driver>/bind`, `/sys/module/<module>/parameters/<param>`), so they are
 * checked here, before any path is built: the grammar admits no `/`, NUL or whitespace, and `.` and
 * `..` are refused by name.
 */
import { VfbError } from '../errors.js';

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

type NameKind = 'driver' | 'module' | 'module parameter';

export function isSysfsName(name: unknown): name is string {
  return typeof name === 'string' && NAME.test(name) && name !== '.' && name !== '..';
}

/** The name unchanged, or INVALID_ARGUMENT saying what a valid one looks like. */
export function checkSysfsName(kind: NameKind, name: string): string {
  if (isSysfsName(name)) return name;
  const shown = JSON.stringify(String(name).slice(0, 40));
  throw new VfbError('INVALID_ARGUMENT', `invalid ${kind} name ${shown}`, {
    hint: 'use 1 to 64 letters, digits, "_", "-" or "." as the kernel names it (e.g. vfio-pci, vfio_pci)',
  });
}
