/**
 * What every `vfbroker` command's help must offer (issue 9): a one-line description, at least one
 * example, and for a command that prints a result, the shape of its --json document.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../../../src/cli/program.js';
import { commandPath, commandTree, epilogueBlocks, helpEpilogue } from '../../../src/cli/reference.js';

/** Commands that print no result document, and why. */
const NO_JSON_DOCUMENT: Readonly<Record<string, string>> = {
  'vfbroker serve': 'a daemon: what it prints is its log',
  'vfbroker hook qemu': 'libvirt reads its exit status and stderr, nothing else',
};

const commands: Command[] = commandTree(buildProgram());
const path = commandPath;
const epilogue = helpEpilogue;

describe('vfbroker commands', () => {
  it('are all looked at', () => {
    const paths = commands.map(path);
    for (const expected of ['vfbroker token get', 'vfbroker pf up', 'vfbroker hook qemu', 'vfbroker install'])
      assert.ok(paths.includes(expected), `${expected} among ${paths.join(', ')}`);
  });

  for (const cmd of commands) {
    describe(path(cmd), () => {
      it('has a one-line description, lower-case and without a full stop, like commander’s own', () => {
        const d = cmd.description();
        assert.match(d, /^[a-z][^\n]*[^.\n]$/, `description: ${JSON.stringify(d)}`);
      });

      it('shows at least one example of itself in --help', () => {
        const examples = epilogueBlocks(epilogue(cmd)).filter((b) => b.startsWith('```sh\n'));
        assert.ok(
          examples.some((b) => b.includes(path(cmd))),
          `${path(cmd)} --help has no indented example line that runs ${path(cmd)}`,
        );
      });

      if (cmd.commands.length === 0 && !(path(cmd) in NO_JSON_DOCUMENT)) {
        it('documents the JSON document it prints with --json', () => {
          assert.match(
            epilogue(cmd),
            /--json prints one document: \{/,
            `${path(cmd)} --help should say "--json prints one document: {…}" with the document's keys`,
          );
        });
      }
    });
  }
});
