/** Running the `vfbroker` CLI itself as a child process, to show its real output. */
import { spawn } from 'node:child_process';
import { basename, isAbsolute, relative } from 'node:path';
import { VfbError } from '../errors.js';
import { CLI_MAIN } from './broker-process.js';

const DEADLINE_MS = 30_000;

/** Its stdout; a failure carries its one-line error. */
export function runVfbroker(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new VfbError('UNAVAILABLE', `cannot run vfbroker ${args.join(' ')}: ${err.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else {
        const said = stderr.split('\n')[0] ?? '';
        reject(
          new VfbError(
            'UNAVAILABLE',
            `vfbroker ${args.join(' ')} failed (status ${code ?? 'none'}): ${said}`,
          ),
        );
      }
    });
  });
}

/** How to run this same `vfbroker` from the current directory, for commands the demo suggests. */
export function vfbrokerCommand(): string {
  const script = process.argv[1] ?? CLI_MAIN;
  if (basename(script) !== 'main.js') return basename(script);
  const rel = relative(process.cwd(), script);
  return `node ${rel.startsWith('..') || isAbsolute(rel) ? script : rel}`;
}
