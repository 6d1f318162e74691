/**
 * The command tree. Each command lives in src/cli/commands/ and registers itself here; the
 * definitions are also the source of docs/cli.md (generated, checked in sync by a test).
 */
import { Command, type CommanderError } from 'commander';
import { VfbError } from '../errors.js';
import { VERSION } from '../version.js';
import { addGlobalOptions } from './context.js';
import { registerDemo } from './commands/demo.js';
import { registerDoctor } from './commands/doctor.js';
import { registerGuest } from './commands/guest.js';
import { registerHook } from './commands/hook.js';
import { registerInstall } from './commands/install.js';
import { registerPf } from './commands/pf.js';
import { registerPolicy } from './commands/policy.js';
import { registerServe } from './commands/serve.js';
import { registerToken } from './commands/token.js';

export function buildProgram(): Command {
  const program = new Command('vfbroker')
    .description('Per-PF SR-IOV VF tokens kept in Vault and handed only to authorised guests')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError()
    .exitOverride(usageError)
    .configureOutput({ outputError: () => undefined });
  addGlobalOptions(program);
  registerServe(program);
  registerToken(program);
  registerPf(program);
  registerPolicy(program);
  registerGuest(program);
  registerHook(program);
  registerInstall(program);
  registerDoctor(program);
  registerDemo(program);
  return program;
}

/**
 * commander reports usage mistakes by throwing; --help and --version are not failures. Usage errors
 * become INVALID_ARGUMENT so they exit 64 (EX_USAGE) with our one-line format.
 */
function usageError(err: CommanderError): never {
  // --help and --version "fail" with exit code 0: main lets those through as success.
  if (err.exitCode === 0) throw err;
  throw new VfbError('INVALID_ARGUMENT', err.message.replace(/^error: /, ''), {
    hint: 'see `vfbroker --help` or `vfbroker <command> --help`',
  });
}
