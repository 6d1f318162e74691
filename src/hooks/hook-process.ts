/**
 * The hook as a process: argv and stdin in, one runQemuHook call, stderr lines and the exit status
 * out. Shared by the installed hook (qemu-hook-main.ts) and `vfbroker hook qemu`. Nothing heavy is
 * imported here: the D-Bus client (the wire client, not dbus-next) is loaded only when a guest
 * actually involves a VF token, and stdin is read without Node's stream machinery where it can be.
 */
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { ERROR_KINDS, VfbError } from '../errors.js';
import type { ConnectBroker } from './broker-port.js';
import { parseHookArgv } from './hook-argv.js';
import { stderrLogger } from './hook-logger.js';
import { readHookSettings, type HookSettings } from './hook-settings.js';
import { DEFAULT_DEADLINE_MS, runQemuHook } from './qemu-hook.js';
import type { HostPci } from './token-devices.js';

/** The host's PCI devices, opened on first use: a guest without PCI devices never needs them. */
function lazySysfs(settings: HookSettings): HostPci {
  let opened: Promise<HostPci> | undefined;
  const sysfs = () =>
    (opened ??=
      'root' in settings.sysfs
        ? import('../sysfs/real.js').then(
            ({ RealSysfs }) => new RealSysfs({ root: (settings.sysfs as { root: string }).root }),
          )
        : import('../sysfs/persistent.js').then(({ openSimulatedSysfs }) =>
            openSimulatedSysfs(
              (settings.sysfs as { simulator: { fixture: string; stateFile: string } }).simulator,
            ),
          ));
  return {
    exists: async (addr) => (await sysfs()).exists(addr),
    physfn: async (addr) => (await sysfs()).physfn(addr),
    driver: async (addr) => (await sysfs()).driver(addr),
  };
}

function connectorFor(settings: HookSettings, deadlineMs: number): ConnectBroker {
  return async () => {
    const { WireBrokerClient } = await import('../dbus/wire/client.js');
    return WireBrokerClient.connect({
      ...(settings.busAddress === null ? {} : { address: settings.busAddress }),
      timeoutMs: deadlineMs,
      callTimeoutMs: deadlineMs,
    });
  };
}

/**
 * The hook's stdin. process.stdin costs a good part of the hook's start-up budget (a stream, its
 * async iterator), so fd 0 is read directly where no read can block:
 * - a regular file (`< file`): reads never block;
 * - a pipe, which is what libvirt gives (virCommand): opened again through /proc/self/fd/0 with
 *   O_NONBLOCK (a new open file description, so fd 0 itself is left as it is), and looked at again
 *   a moment later while it is empty. A plain read of fd 0 would park in libuv's thread pool, and
 *   libuv joins those threads at exit: process.exit would wait for a writer that never closes.
 * Anything else (a socket, as Node's child_process gives; a terminal) goes through process.stdin.
 */
function stdinChunks(): AsyncIterable<Uint8Array> {
  let kind: 'file' | 'pipe' | 'other';
  try {
    const stat = fstatSync(0);
    kind = stat.isFile() ? 'file' : stat.isFIFO() ? 'pipe' : 'other';
  } catch {
    kind = 'other';
  }
  if (kind === 'file') return new FdChunks(0, false);
  if (kind === 'pipe') {
    try {
      return new FdChunks(openSync('/proc/self/fd/0', constants.O_RDONLY | constants.O_NONBLOCK), true);
    } catch {
      // No /proc (a minimal container): the stream, which does the same with epoll.
    }
  }
  return process.stdin;
}

const CHUNK_BYTES = 64 * 1024;
/** How long to wait before looking at an empty pipe again: from 1 ms, doubling up to this. */
const MAX_POLL_MS = 16;

/** Chunks read from `fd` until end of file; `owned`: the fd is ours to close when done. */
class FdChunks implements AsyncIterableIterator<Uint8Array> {
  private done = false;

  constructor(
    private readonly fd: number,
    private readonly owned: boolean,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    for (let waitMs = 1; !this.done; waitMs = Math.min(waitMs * 2, MAX_POLL_MS)) {
      let n: number;
      try {
        n = readSync(this.fd, chunk, 0, CHUNK_BYTES, null);
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'EAGAIN') {
          this.finish();
          throw err;
        }
        // Unref'd: the hook's deadline timer is what keeps the process waiting, never this.
        await new Promise((resolve) => setTimeout(resolve, waitMs).unref());
        continue;
      }
      if (n === 0) break;
      return { done: false, value: chunk.subarray(0, n) };
    }
    this.finish();
    return { done: true, value: undefined };
  }

  /** The reader gave up (input too large, deadline): stop polling. */
  return(): Promise<IteratorResult<Uint8Array>> {
    this.finish();
    return Promise.resolve({ done: true, value: undefined });
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.owned) closeSync(this.fd);
  }
}

/** One run of the hook as libvirt starts it: argv in, stderr lines out, the exit status returned. */
export async function hookProcess(argv: readonly string[]): Promise<number> {
  const logger = stderrLogger();
  try {
    const settings = readHookSettings();
    const deadlineMs = settings.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const result = await runQemuHook({
      argv,
      stdin: stdinChunks(),
      sysfs: lazySysfs(settings),
      connectBroker: connectorFor(settings, deadlineMs),
      deadlineMs,
      logger,
    });
    for (const line of result.stderrLines) writeSync(2, `${line}\n`);
    return result.exitCode;
  } catch (err) {
    // runQemuHook maps every expected failure itself, so this is a bad settings file or a bug: a
    // start must not pass on it, while at started/stopped/release a failing exit would kill the
    // guest or be ignored.
    const known = err instanceof VfbError;
    const message = err instanceof Error ? err.message.split('\n')[0] : 'unknown error';
    writeSync(2, `vfbroker: ${known ? '' : 'internal error in the qemu hook: '}${message}\n`);
    const { op } = parseHookArgv(argv);
    return op === 'prepare' || op === 'start' ? (known ? err.exitCode : ERROR_KINDS.INTERNAL.exit) : 0;
  }
}
