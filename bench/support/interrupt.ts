/**
 * Ctrl-C or SIGTERM ends the measuring early instead of killing the bench, so it still stops its
 * broker and dbus-daemon and removes its temporary files. The loops check `stopped`.
 */
import { VfbError } from '../../src/errors.js';

export interface Interrupt {
  readonly stopped: boolean;
  /** Restores the default signal behaviour. */
  dispose(): void;
}

export function catchInterrupt(): Interrupt {
  let stopped = false;
  const stop = (): void => {
    stopped = true;
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    get stopped() {
      return stopped;
    },
    dispose() {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

/** After the clean-up: an interrupted run printed no figures, and says so with a failing exit. */
export function throwIfInterrupted(interrupt: Interrupt): void {
  if (interrupt.stopped)
    throw new VfbError('UNAVAILABLE', 'interrupted; everything it started is stopped', {
      hint: 'no figures were printed: run it again',
    });
}

/** Runs a bench's main: an expected failure is one line and its hint on stderr, exit status 1. */
export async function runBench(name: string, main: () => Promise<void>): Promise<void> {
  await main().catch((err: unknown) => {
    if (!(err instanceof VfbError)) throw err;
    process.stderr.write(`${name}: ${err.message}\n  ${err.hint}\n`);
    process.exitCode = 1;
  });
}
