/**
 * The shape of every config error: CONFIG_INVALID, one line, `file:line:column: key.path: message`,
 * with the same facts in `details` for `--json` output and tests.
 */
import { VfbError } from '../errors.js';

export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** `path` is the formatted key path (`pfs[1].vfs`), empty for the file or its top level. */
export function configError(where: SourceLocation, path: string, message: string, cause?: unknown): VfbError {
  const prefix = `${where.file}:${where.line}:${where.column}: ${path === '' ? '' : `${path}: `}`;
  return new VfbError('CONFIG_INVALID', prefix + message, {
    details: { file: where.file, line: where.line, column: where.column, path },
    ...(cause === undefined ? {} : { cause }),
  });
}
