import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { format, resolveConfig } from 'prettier';
import { buildProgram } from '../../../src/cli/program.js';
import { CLI_REFERENCE_FILE, renderCliReference } from '../../../src/cli/reference.js';
import { ERROR_KINDS } from '../../../src/errors.js';
import { repoPath } from '../../support/repo.js';

const REGENERATE =
  'run `npm run build && node scripts/gen-cli-docs.mjs` (npm run docs:cli) and commit docs/cli.md';

/** The first line where two texts differ, for a message that says where rather than that. */
function firstDifference(actual: string, expected: string): string {
  const a = actual.split('\n');
  const e = expected.split('\n');
  const i = a.findIndex((line, n) => line !== e[n]);
  const at = i === -1 ? a.length : i;
  return `line ${at + 1}: file has ${JSON.stringify(a[at] ?? '<end>')}, generator ${JSON.stringify(e[at] ?? '<end>')}`;
}

describe('docs/cli.md', () => {
  it('is what the command definitions generate', async () => {
    const onDisk = await readFile(repoPath(CLI_REFERENCE_FILE), 'utf8');
    const generated = renderCliReference(buildProgram());
    if (onDisk !== generated) {
      assert.fail(
        `${CLI_REFERENCE_FILE} is out of date (${firstDifference(onDisk, generated)}): ${REGENERATE}`,
      );
    }
  });

  it('is generated already formatted the way prettier (npm run check) formats it', async () => {
    const file = repoPath(CLI_REFERENCE_FILE);
    const generated = renderCliReference(buildProgram());
    const formatted = await format(generated, { ...(await resolveConfig(file)), filepath: file });
    if (formatted !== generated) {
      assert.fail(`prettier would change the generated reference (${firstDifference(generated, formatted)})`);
    }
  });
});

describe('renderCliReference', () => {
  function sample(): Command {
    const program = new Command('tool').description('a tool for <things>');
    program.option('--json', 'print JSON', false);
    const group = program.command('grp').description('a group of commands');
    group
      .command('leaf')
      .description('does one thing')
      .argument('<vf>', 'the VF address')
      .requiredOption('--vf <address>', 'the VF')
      .option('--count <n>', 'how many', '3')
      .addHelpText(
        'after',
        [
          '',
          'Sets <qemu:override> on `ua-x_y` and lists findings[] | more.',
          '- this line is not a list item',
          '',
          'Examples:',
          '  tool grp leaf --vf 0000:3b:10.1 x',
          '  tool --json grp leaf --vf 0000:3b:10.1 y',
        ].join('\n'),
      );
    return program;
  }

  it('gives each command a heading by depth, its usage and its arguments and options with defaults', () => {
    const md = renderCliReference(sample());
    assert.ok(md.includes('\n## `tool grp`\n\na group of commands\n'), md);
    assert.ok(
      md.includes('\n### `tool grp leaf`\n\ndoes one thing\n\n```text\ntool grp leaf [options] <vf>\n```\n'),
    );
    assert.ok(
      md.includes(
        [
          '| argument | description    |',
          '| -------- | -------------- |',
          '| `vf`     | the VF address |',
        ].join('\n'),
      ),
    );
    assert.ok(
      md.includes(
        [
          '| option           | description             |',
          '| ---------------- | ----------------------- |',
          '| `--vf <address>` | the VF (required)       |',
          '| `--count <n>`    | how many (default: "3") |',
        ].join('\n'),
      ),
    );
  });

  it('turns the help epilogue into escaped prose and shell blocks, keeping code spans as written', () => {
    const md = renderCliReference(sample());
    assert.ok(
      md.includes(
        [
          'Sets \\<qemu:override\\> on `ua-x_y` and lists findings\\[\\] \\| more.',
          '\\- this line is not a list item',
          '',
          'Examples:',
          '',
          '```sh',
          'tool grp leaf --vf 0000:3b:10.1 x',
          'tool --json grp leaf --vf 0000:3b:10.1 y',
          '```',
        ].join('\n'),
      ),
      md,
    );
  });

  it('lists the commands with links to their sections, and global options once; no help command', () => {
    const md = renderCliReference(sample());
    assert.ok(
      md.includes(
        '- [`tool grp`](#tool-grp): a group of commands\n- [`tool grp leaf`](#tool-grp-leaf): does one thing',
      ),
    );
    assert.ok(md.includes('| `--json` | print JSON (default: false) |'));
    assert.equal(md.split('| `--json` |').length - 1, 1, 'the global option is in the global table only');
    assert.ok(!md.includes('tool help') && !md.includes('tool grp help'));
    assert.ok(md.startsWith('<!-- Generated'));
    assert.ok(md.includes('\n# `tool` command reference\n\na tool for \\<things\\>\n'));
  });

  it('maps every exit status to the error codes that have it', () => {
    const md = renderCliReference(sample());
    for (const [code, kind] of Object.entries(ERROR_KINDS)) {
      const row = md.split('\n').find((l) => l.startsWith(`| ${kind.exit} `));
      assert.ok(row?.includes(`\`${code}\``), `${code} in the row for exit ${kind.exit}: ${row ?? 'none'}`);
    }
    assert.ok(/^\| 0 +\| success +\|$/m.test(md));
  });
});
