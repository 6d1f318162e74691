/**
 * Ctrl-C or SIGTERM ends the measuring early instead of killing the bench, so it still stops its
 * broker and dbus-daemon and removes its temporary files. The loops check `stopped`.
 */
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
