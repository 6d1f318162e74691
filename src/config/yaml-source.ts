/**
 * The one way vfbroker reads a YAML file: bounded in size, depth and alias expansion, parsed with
 * positions kept, and validated against a zod schema whose first problem becomes a one-line
 * CONFIG_INVALID error that says `file:line:column: key.path: what was expected, what was found`.
 *
 * The file is untrusted input: a size cap bounds the work, the limits in yaml-limits.ts bound the
 * recursion, and only core-schema YAML is accepted (no custom or YAML 1.1 tags, no merge keys,
 * string keys only, unique keys).
 */
import {
  LineCounter,
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  parseDocument,
  visit,
  type Document,
  type Node,
} from 'yaml';
import type * as z from 'zod';
import type { VfbError } from '../errors.js';
import { readBoundedText } from './bounded-file.js';
import { configError, type SourceLocation } from './config-error.js';
import { defaultMessage } from './schema.js';
import { checkStructure, prescan } from './yaml-limits.js';
import { describeValue, formatPath, quote } from './wording.js';

/** Config files are a few KB; a policy with 1,000 rules is about 150 KB. */
export const MAX_FILE_BYTES = 1024 * 1024;

export type { SourceLocation } from './config-error.js';

/** How many alias expansions toJS may perform (the yaml package weighs nested aliases). */
export const MAX_ALIAS_COUNT = 32;

export interface ReadOptions {
  readonly maxBytes?: number;
}

/** A parsed YAML file whose values can be traced back to their line and column. */
export class YamlSource {
  readonly name: string;
  /** The document as plain JS values (mappings are plain objects with string keys). */
  readonly data: unknown;
  readonly #doc: Document.Parsed;
  readonly #lines: LineCounter;

  private constructor(name: string, doc: Document.Parsed, lines: LineCounter, data: unknown) {
    this.name = name;
    this.#doc = doc;
    this.#lines = lines;
    this.data = data;
  }

  /** Parses text named `name` (a path, or a label such as "<stdin>") or throws CONFIG_INVALID. */
  static parse(text: string, name: string): YamlSource {
    const lines = new LineCounter();
    const at = (offset: number): SourceLocation => locationOf(name, lines, offset);

    const early = prescan(text);
    if (early) {
      // The line counter is filled by the parser; count lines by hand for this early error.
      throw configError(locationIn(name, text, early.offset), '', early.message);
    }
    const doc = parseDocument(text, {
      lineCounter: lines,
      prettyErrors: false,
      version: '1.2',
      schema: 'core',
      customTags: [],
      resolveKnownTags: false,
      merge: false,
      stringKeys: true,
      uniqueKeys: true,
      strict: true,
    });
    const problems = [...doc.errors, ...doc.warnings].sort((a, b) => a.pos[0] - b.pos[0]);
    const first = problems[0];
    if (first) {
      const key = first.code === 'DUPLICATE_KEY' ? keyAt(doc, first.pos[0]) : null;
      const message =
        key === null ? `invalid YAML: ${first.message.slice(0, 200)}` : `duplicate key ${quote(key)}`;
      throw configError(at(first.pos[0]), '', message);
    }
    const violation = checkStructure(doc);
    if (violation) throw configError(at(violation.node.range?.[0] ?? 0), '', violation.message);

    let data: unknown;
    try {
      data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      // yaml throws a ReferenceError when expanding the aliases would exceed the count.
      throw configError(
        at(firstAliasOffset(doc)),
        '',
        `too many alias expansions (at most ${MAX_ALIAS_COUNT})`,
        err,
      );
    }
    if (data === null || data === undefined)
      throw configError(at(0), '', 'the file is empty; expected a mapping of settings');
    if (!isMap(doc.contents)) {
      throw configError(
        at(doc.contents?.range[0] ?? 0),
        '',
        `expected a mapping at the top level, found ${describeValue(data)}`,
      );
    }
    return new YamlSource(name, doc, lines, data);
  }

  /** Reads and parses a file of at most `maxBytes` (default 1 MiB), or throws CONFIG_INVALID. */
  static async read(path: string, options: ReadOptions = {}): Promise<YamlSource> {
    return YamlSource.parse(await readBoundedText(path, options.maxBytes ?? MAX_FILE_BYTES), path);
  }

  /**
   * Where the value at `path` was written: the key of a mapping entry, the item of a list. For a
   * path that does not exist (a missing key), the nearest ancestor that does.
   */
  locate(path: readonly PropertyKey[]): SourceLocation {
    let node: unknown = this.#doc.contents;
    let anchor: Node | null = isNode(node) ? node : null;
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(this.#doc);
      if (isMap(node) && typeof seg === 'string') {
        const pair = node.items.find((p) => isScalar(p.key) && p.key.value === seg);
        if (!pair || !isNode(pair.key)) break;
        anchor = pair.key;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item: unknown = node.items[seg];
        if (!isNode(item)) break;
        anchor = item;
        node = item;
      } else {
        break;
      }
    }
    return locationOf(this.name, this.#lines, anchor?.range?.[0] ?? 0);
  }

  /** A CONFIG_INVALID error about the value at `path`, for checks made after the schema's. */
  error(path: readonly PropertyKey[], message: string): VfbError {
    return configError(this.locate(path), formatPath(path), message);
  }

  /**
   * The data, validated and transformed by `schema`. On failure, the problem written first in the
   * file is reported, with a count of the others.
   */
  validate<S extends z.ZodType>(schema: S): z.output<S> {
    const result = schema.safeParse(this.data, { reportInput: true, error: defaultMessage });
    if (result.success) return result.data;
    const issues = result.error.issues;
    // A misspelt key shows up twice: as unknown, and as the key it was meant to be, missing. The
    // unknown one, with its suggestion, is the one worth reading.
    const unknownIn = new Set(
      issues.filter((i) => i.code === 'unrecognized_keys').map((i) => formatPath(i.path)),
    );
    const isShadowed = (i: z.core.$ZodIssue) =>
      i.input === undefined && unknownIn.has(formatPath(i.path.slice(0, -1)));
    const located = issues
      .filter((issue) => !isShadowed(issue))
      .map((issue) => {
        // An unknown key is shown where the key is, though the issue belongs to its mapping.
        const where =
          issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined
            ? [...issue.path, issue.keys[0]]
            : issue.path;
        return { issue, location: this.locate(where) };
      })
      .sort((a, b) => a.location.line - b.location.line || a.location.column - b.location.column);
    const { issue, location } = located[0] as (typeof located)[number];
    const more = issues.length - 1;
    const suffix = more === 0 ? '' : ` (and ${more} more problem${more === 1 ? '' : 's'})`;
    throw configError(location, formatPath(issue.path), issue.message + suffix);
  }
}

/** Reads, parses and validates in one step, for files that need no checks beyond the schema. */
export async function loadYamlFile<S extends z.ZodType>(
  path: string,
  schema: S,
  options: ReadOptions = {},
): Promise<z.output<S>> {
  return (await YamlSource.read(path, options)).validate(schema);
}

function locationOf(file: string, lines: LineCounter, offset: number): SourceLocation {
  const { line, col } = lines.linePos(offset);
  return { file, line, column: col };
}

function locationIn(file: string, text: string, offset: number): SourceLocation {
  const before = text.slice(0, offset);
  const lastNewline = before.lastIndexOf('\n');
  let line = 1;
  for (let i = before.indexOf('\n'); i >= 0; i = before.indexOf('\n', i + 1)) line++;
  return { file, line, column: offset - lastNewline };
}

/** The key written at `offset`, to name it in an error. */
function keyAt(doc: Document.Parsed, offset: number): string | null {
  let key: string | null = null;
  visit(doc, {
    Pair(_key, pair) {
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) {
        key = String(pair.key.value);
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return key;
}

function firstAliasOffset(doc: Document.Parsed): number {
  let offset = 0;
  visit(doc, {
    Alias(_key, node) {
      offset = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return offset;
}
