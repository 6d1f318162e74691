#!/usr/bin/env node
/**
 * The `vfbroker` command. Thin on purpose: argv → typed options → one library call → output.
 * Every failure ends here as one line on stderr and the exit status of its error code.
 */
import { CommanderError } from 'commander';
import { buildProgram } from './program.js';
import { Output } from './output.js';

const wantsJson = process.argv.includes('--json');
try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError && err.exitCode === 0))
    process.exitCode = new Output({ json: wantsJson }).error(err);
}
