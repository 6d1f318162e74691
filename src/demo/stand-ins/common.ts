/**
 * What the demo's PF driver stand-ins share: how the generated executable loads them, their
 * command-line reading, and staying up until told to stop. A stand-in acts on the simulated host of
 * `vfbroker demo` (openSimulatedSysfs's state file), never on hardware.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { KernelError, VfbError } from '../../errors.js';

/**
 * Writes an executable file that runs `main(settings)` of the stand-in module: the settings play
 * the part of what the real program has compiled in (where its log and socket go) and of the
 * hardware (where the simulated host is). The shebang names node by absolute path, as a PF driver
 * started by the broker cannot rely on PATH; only import() is used, so the file runs the same as
 * CommonJS or ESM, whatever its name.
 */
export async function writeStandIn(path: string, module: URL, what: string, settings: object): Promise<void> {
  if (/\s/.test(process.execPath)) {
    // The kernel splits a shebang line at the first blank only.
    throw new VfbError(
      'UNAVAILABLE',
      `node's path ${JSON.stringify(process.execPath)} has a blank in it, which a #! line cannot carry`,
      {
        hint: 'run the demo with a node installed at a path without blanks',
      },
    );
  }
  const text = [
    `#!${process.execPath}`,
    `// vfbroker demo: a STAND-IN for ${what}, acting on the demo's simulated host, not on hardware.`,
    `import(${JSON.stringify(module.href)}).then((m) => m.main(${JSON.stringify(settings)}));`,
    '',
  ].join('\n');
  await writeFile(path, text, { mode: 0o700 });
  await chmod(path, 0o700);
}

/** The argument after `flag`, as getopt-style programs take `-p 0000:b1:00.0`. */
export function valueAfter(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

/** The kernel's answer to a refused VFIO call, as the programs print it. */
export function errnoOf(err: unknown): string {
  return err instanceof KernelError ? err.errno : 'EIO';
}

/**
 * Resolves on SIGTERM or SIGINT, and, with `orEndOf`, when that stream ends: a PF application the
 * broker supervises reads its stdin from the broker, so its end means the broker is gone.
 */
export function untilStopped(orEndOf?: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      orEndOf?.off('end', stop);
      orEndOf?.pause();
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    if (orEndOf) {
      orEndOf.once('end', stop);
      orEndOf.resume();
    }
  });
}
