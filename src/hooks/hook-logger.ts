/**
 * What the hook logs through. pino's Logger satisfies it (tests pass the capturing one); the
 * installed hook uses stderrLogger below instead, because loading pino costs more start-up time than
 * the whole hook may take, and because libvirt quotes a failing hook's stderr: only warnings and
 * errors are written, never from a gating op's success path.
 */
import { writeSync } from 'node:fs';

export interface HookLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * One line per record on fd 2: `vfbroker: <message> (key=value, …)`. Only addresses, ops, codes
 * and messages are ever passed in; no token reaches a logger call (the tests check it).
 */
export function stderrLogger(fd = 2): HookLogger {
  const write = (fields: object, message: string) => {
    const extra = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(', ');
    writeSync(fd, `vfbroker: ${message}${extra ? ` (${extra})` : ''}\n`);
  };
  const ignore = () => undefined;
  return { debug: ignore, info: ignore, warn: write, error: write };
}
