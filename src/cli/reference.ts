/**
 * docs/cli.md, rendered from the command definitions themselves (buildProgram()), so the reference
 * says what `--help` says: each command's description, usage, arguments, options with their
 * defaults, and its help epilogue (what it does, exit statuses, the --json document, examples).
 * scripts/gen-cli-docs.mjs writes the file; test/unit/cli/reference.test.ts fails when the
 * checked-in copy differs. The output is already in the form prettier gives it, so `npm run check`
 * and the generator never fight over the file.
 */
import type { Argument, Command, Help, Option } from 'commander';
import { ERROR_KINDS, VfbError, type ErrorCode } from '../errors.js';

/** Where the generated reference lives, relative to the repository root. */
export const CLI_REFERENCE_FILE = 'docs/cli.md';

const GENERATED_NOTE =
  '<!-- Generated from the command definitions in src/cli/ by scripts/gen-cli-docs.mjs: edit those, then run `npm run docs:cli`. -->';

/** What every command shares; src/cli/output.ts and src/cli/context.ts are where it is enforced. */
const CONVENTIONS = [
  '- Output is text for people on stdout. With `--json` it is one JSON document instead, whose shape each command below gives; documents may gain keys, so scripts should ignore keys they do not know.',
  '- A failure is one line on stderr, `vfbroker: <message>`, followed by `  hint: <what to do>`; with `--json` it is `{"error": {"code", "message", "hint", …}}` on stderr. Messages never contain a token.',
  '- Long operations (bringing PFs up or down, rotating) report progress on stderr, and are silent with `--json`.',
  '- No colour unless stdout is a terminal and `NO_COLOR` is unset.',
  '- `-h, --help` on every command but `hook qemu` (which passes every argument to the hook) prints its part of this page.',
];

export function renderCliReference(program: Command): string {
  const help = program.createHelp();
  const commands = commandTree(program);
  const blocks = [
    GENERATED_NOTE,
    `# \`${program.name()}\` command reference`,
    paragraph(program.description()),
    '## Conventions',
    CONVENTIONS.join('\n'),
    '## Exit status',
    "The status of a failure is its error code's; [errors.md](errors.md) says what each code means and how to solve it.",
    exitStatusTable(),
    'A command with statuses of its own (`policy check`, `doctor`, `hook qemu`) says so in its section.',
    '## Global options',
    'These go before or after the command, e.g. `vfbroker --json token status`.',
    optionTable(program.options, help),
    '## Commands',
    commands
      .map((c) => `- [\`${commandPath(c)}\`](#${anchor(c)}): ${escapeInline(c.description())}`)
      .join('\n'),
    ...commands.flatMap((c) => commandSection(c, help)),
  ];
  return blocks.filter((b) => b !== '').join('\n\n') + '\n';
}

/** Every subcommand below `cmd`, depth first, in the order they were registered. */
export function commandTree(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...commandTree(c)]);
}

/** `vfbroker token get`: the command's name with its parents'. */
export function commandPath(cmd: Command): string {
  return cmd.parent ? `${commandPath(cmd.parent)} ${cmd.name()}` : cmd.name();
}

/** GitHub's heading anchor for `vfbroker token get` (code spans drop their backticks). */
function anchor(cmd: Command): string {
  return commandPath(cmd).replace(/ /g, '-');
}

function depth(cmd: Command): number {
  return cmd.parent ? depth(cmd.parent) + 1 : 0;
}

function commandSection(cmd: Command, help: Help): string[] {
  const args = cmd.registeredArguments;
  // Only options the command declares: the help option is on every command (see Conventions).
  const options = cmd.options;
  return [
    `${'#'.repeat(depth(cmd) + 1)} \`${commandPath(cmd)}\``,
    paragraph(cmd.description()),
    fence('text', [help.commandUsage(cmd)]),
    args.length > 0 ? argumentTable(args, help) : '',
    options.length > 0 ? optionTable(options, help) : '',
    ...epilogueBlocks(helpEpilogue(cmd)),
  ];
}

/**
 * The text a command adds after its built-in help (`addHelpText('after', …)`). commander keeps it
 * only as a listener, so the help is rendered whole and the built-in part taken off the front.
 */
export function helpEpilogue(cmd: Command): string {
  const saved = { ...cmd.configureOutput() };
  let written = '';
  cmd.configureOutput({ writeOut: (s) => (written += s) });
  try {
    cmd.outputHelp();
  } finally {
    cmd.configureOutput(saved);
  }
  const builtIn = cmd.helpInformation();
  if (!written.startsWith(builtIn)) {
    // Silently dropping the epilogues would drop every example and exit status from the reference.
    throw new VfbError('INTERNAL', `the help of ${commandPath(cmd)} does not start with its built-in part`);
  }
  return written.slice(builtIn.length);
}

/**
 * Help epilogues are plain text for a terminal: paragraphs of prose, and lines indented by two
 * spaces (examples, command lines) that become shell code blocks.
 */
export function epilogueBlocks(text: string): string[] {
  const blocks: string[] = [];
  let prose: string[] = [];
  let code: string[] = [];
  const flush = (): void => {
    if (prose.length > 0) blocks.push(paragraph(prose.join('\n')));
    if (code.length > 0) blocks.push(fence('sh', code));
    prose = [];
    code = [];
  };
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line === '') {
      flush();
    } else if (line.startsWith('  ')) {
      if (prose.length > 0) flush();
      code.push(line.slice(2));
    } else {
      if (code.length > 0) flush();
      prose.push(line);
    }
  }
  flush();
  return blocks;
}

function paragraph(text: string): string {
  return text
    .split('\n')
    .map((line) => escapeLineStart(escapeInline(line.trim())))
    .join('\n');
}

function fence(language: string, lines: readonly string[]): string {
  return ['```' + language, ...lines, '```'].join('\n');
}

/**
 * Escapes what Markdown would read as markup (`<qemu:override>` as HTML, `findings[]` as a link,
 * `*` and `_` as emphasis, `|` as a table cell), outside code spans, which are kept as written.
 */
export function escapeInline(text: string): string {
  return text
    .split(/(`[^`]+`)/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/[\\`*_<>[\]|]/g, '\\$&')))
    .join('');
}

/** A line that would start a list, a heading or a setext underline, kept as text. */
function escapeLineStart(line: string): string {
  if (/^([-+] |#{1,6}( |$)|[-=]+$)/.test(line)) return '\\' + line;
  return line.replace(/^(\d+)([.)] )/, '$1\\$2');
}

function argumentTable(args: readonly Argument[], help: Help): string {
  return table(
    ['argument', 'description'],
    args.map((a) => [code(help.argumentTerm(a)), escapeInline(help.argumentDescription(a))]),
  );
}

function optionTable(options: readonly Option[], help: Help): string {
  return table(
    ['option', 'description'],
    options.map((o) => [
      code(help.optionTerm(o)),
      escapeInline(help.optionDescription(o) + (o.mandatory ? ' (required)' : '')),
    ]),
  );
}

function exitStatusTable(): string {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of Object.keys(ERROR_KINDS) as ErrorCode[]) {
    const status = ERROR_KINDS[code].exit;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const rows = [...byStatus.entries()]
    .sort(([a], [b]) => a - b)
    .map(([status, codes]) => [String(status), codes.map((c) => code(c)).join(', ')]);
  return table(['status', 'meaning'], [['0', 'success'], ...rows]);
}

function code(text: string): string {
  return '`' + text + '`';
}

/** A table padded the way prettier pads it, so the generated file is already formatted. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, col) => Math.max(3, ...all.map((r) => width(r[col] ?? ''))));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, col) => c + ' '.repeat((widths[col] ?? 0) - width(c))).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Columns a cell takes: one per code point, as for the characters vfbroker's help uses. */
function width(text: string): number {
  return [...text].length;
}
