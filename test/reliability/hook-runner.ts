/**
 * The installed libvirt hook, run the way libvirt runs it (REFERENCE.md §4): the bundle itself as
 * the executable, argv `<domain> <op> <subop> <extra>`, the domain XML on stdin, and only libvirt's
 * environment (LC_ALL=C plus PATH, HOME, USER, LOGNAME, TMPDIR) — with VFBROKER_HOOK_SETTINGS
 * pointing it at the test's bus and simulated host, as `vfbroker demo` does, and with no code cache
 * unless a test names one (VFBROKER_HOOK_CODE_CACHE), so that no test writes to /var/cache/vfbroker.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Built by `npm run build` (scripts/build-hook.mjs) next to the compiled sources. */
export const HOOK_BUNDLE = fileURLToPath(new URL('../../hook/vfbroker-qemu-hook.cjs', import.meta.url));
const PASSED_THROUGH = ['PATH', 'HOME', 'USER', 'LOGNAME', 'TMPDIR'] as const;

export interface HookRun {
  /** Exit status; null when it had to be killed. */
  readonly exitCode: number | null;
  readonly stderr: string;
  readonly stdout: string;
  /** It outlived `killAfterMs` and was killed: the bound the hook promises was broken. */
  readonly killed: boolean;
}

export function requireHookBundle(): string {
  if (!existsSync(HOOK_BUNDLE)) {
    throw new Error(
      `the hook bundle ${HOOK_BUNDLE} is missing: run \`npm run build\` (or node scripts/build-hook.mjs --outfile ${HOOK_BUNDLE})`,
    );
  }
  return HOOK_BUNDLE;
}

/**
 * The domain XML arrives as a string written to a pipe, or as a file opened as stdin: in a storm
 * the test process is busy spawning, and a pipe it has not written yet would count against the
 * hook's deadline although libvirt (one writer thread per hook) would have written it at once.
 */
export type HookInput = { readonly xml: string } | { readonly file: string };

export function runHook(
  settingsFile: string,
  args: readonly string[],
  input: HookInput,
  options: { readonly killAfterMs?: number; readonly codeCache?: string } = {},
): Promise<HookRun> {
  const env: Record<string, string> = {
    LC_ALL: 'C',
    VFBROKER_HOOK_SETTINGS: settingsFile,
    VFBROKER_HOOK_CODE_CACHE: options.codeCache ?? '',
  };
  for (const name of PASSED_THROUGH) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return new Promise((resolve, reject) => {
    const stdinFd = 'file' in input ? openSync(input.file, 'r') : null;
    const child = spawn(requireHookBundle(), [...args], { env, stdio: [stdinFd ?? 'pipe', 'pipe', 'pipe'] });
    if (stdinFd !== null) closeSync(stdinFd);
    let stderr = '';
    let stdout = '';
    let killed = false;
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, options.killAfterMs ?? 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, stderr: stderr.trimEnd(), stdout, killed });
    });
    if ('xml' in input) {
      // EPIPE when the hook exits before reading all of stdin: its exit status tells the story.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(input.xml);
    }
  });
}

/** The four ops of a guest's life, with the subop and extra libvirt gives each. */
export function hookArgs(domain: string, op: 'prepare' | 'started' | 'stopped' | 'release'): string[] {
  switch (op) {
    case 'prepare':
    case 'started':
      return [domain, op, 'begin', '-'];
    case 'stopped':
      return [domain, op, 'end', '-'];
    case 'release':
      return [domain, op, 'end', 'shutdown'];
  }
}
