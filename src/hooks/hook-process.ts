/**
 * The hook as a process: argv and stdin in, one runQemuHook call, stderr lines and the exit status
 * out. Shared by the installed hook (qemu-hook-main.ts) and `vfbroker hook qemu`. Nothing heavy is
 * imported here: the D-Bus client is loaded only when a guest actually involves a VF token.
 */
import { writeSync } from 'node:fs';
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
    const { BrokerClient } = await import('../dbus/client.js');
    return BrokerClient.connect({
      ...(settings.busAddress === null ? {} : { address: settings.busAddress }),
      timeoutMs: deadlineMs,
      callTimeoutMs: deadlineMs,
    });
  };
}

/** One run of the hook as libvirt starts it: argv in, stderr lines out, the exit status returned. */
export async function hookProcess(argv: readonly string[]): Promise<number> {
  const logger = stderrLogger();
  try {
    const settings = readHookSettings();
    const deadlineMs = settings.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const result = await runQemuHook({
      argv,
      stdin: process.stdin,
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
