/**
 * zod building blocks for vfbroker's config files. Each one carries the words for its own errors
 * ("expected an integer from 0 to 256, found "eight""), so every problem in a file reads the same
 * way, whichever check found it. Mappings are strict: an unknown key is an error that suggests the
 * known key it was probably meant to be.
 */
import { isAbsolute, resolve } from 'node:path';
import * as z from 'zod';
import { parsePciAddress, type PciAddress } from '../pci/address.js';
import { formatDuration, parseDuration } from './duration.js';
import { describeValue, expectation, quote, unknownKeysMessage } from './wording.js';

interface HasInput {
  readonly input?: unknown;
}

/**
 * zod params whose every error says what was expected and what was found. The first failed check
 * stops the rest, so one bad value makes one problem.
 */
export function expecting(what: string): { error: (issue: HasInput) => string; abort: true } {
  return { error: (issue) => expectation(what, issue.input), abort: true };
}

/** A mapping with exactly these keys (each optional or not as its schema says). */
export function mapping<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? unknownKeysMessage(issue.keys, known)
        : expectation('a mapping', issue.input),
  });
}

/** A mapping whose keys and values are not checked here (a plugin checks its own options). */
export function freeMapping() {
  return z.record(z.string(), z.unknown(), expecting('a mapping'));
}

export function list<T extends z.ZodType>(item: T, what = 'a list') {
  return z.array(item, expecting(what));
}

export function integer(min: number, max: number) {
  const e = expecting(`an integer from ${min} to ${max}`);
  return z.number(e).int(e).min(min, e).max(max, e);
}

/** A string that matches `pattern` in full; `what` describes it ("a host id like node-7"). */
export function matching(pattern: RegExp, what: string, maxLength = 256) {
  const e = expecting(what);
  return z.string(e).max(maxLength, e).regex(pattern, e);
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, expecting(`one of ${values.map((v) => `"${v}"`).join(', ')}`));
}

/** A PCI address in the kernel's canonical form; a near miss is told the canonical spelling. */
export function pciAddress() {
  const what = 'a PCI address like 0000:3b:00.0';
  return z.string(expecting(what)).transform((text, ctx): PciAddress => {
    try {
      return parsePciAddress(text);
    } catch {
      ctx.addIssue({
        code: 'custom',
        input: text,
        message: `${expectation(what, text)}${canonicalHint(text)}`,
      });
      return z.NEVER;
    }
  });
}

function canonicalHint(text: string): string {
  try {
    return ` (did you mean ${parsePciAddress(text, { lenient: true })}?)`;
  } catch {
    return '';
  }
}

/** A duration such as "30d" or "1h30m", as milliseconds, between min and max. */
export function duration(minMs: number, maxMs: number) {
  const what = `a duration from ${formatDuration(minMs)} to ${formatDuration(maxMs)}, like "12h" or "1h30m"`;
  return z.string(expecting(what)).transform((text, ctx): number => {
    const ms = parseDuration(text);
    if (ms === null || ms < minMs || ms > maxMs) {
      ctx.addIssue({ code: 'custom', input: text, message: expectation(what, text) });
      return z.NEVER;
    }
    return ms;
  });
}

/**
 * A filesystem path, made absolute against `baseDirectory` (the config file's directory), so a
 * config and the files it names can move together.
 */
export function filePath(baseDirectory: string) {
  const e = expecting('a path');
  return z
    .string(e)
    .min(1, e)
    .max(4096, e)
    .refine((p) => !p.includes('\0'), e)
    .transform((p) => (isAbsolute(p) ? resolve(p) : resolve(baseDirectory, p)));
}

/** The output of choice(): which key was given, and its value. */
export type Chosen<T extends Readonly<Record<string, z.ZodType>>> = {
  [K in keyof T & string]: { readonly kind: K; readonly value: z.output<T[K]> };
}[keyof T & string];

/**
 * A mapping whose keys are alternatives, exactly one of which must be given: `{ tokenFile: … }`
 * or `{ approle: … }`. Strict like mapping(), and typed by which key was chosen.
 */
export function choice<T extends Readonly<Record<string, z.ZodType>>>(options: T) {
  const keys = Object.keys(options);
  const names = keys.map((k) => `"${k}"`).join(' or ');
  const shape = Object.fromEntries(keys.map((k) => [k, (options[k] as z.ZodType).optional()]));
  return mapping(shape).transform((value: Readonly<Record<string, unknown>>, ctx): Chosen<T> => {
    const present = keys.filter((k) => value[k] !== undefined);
    const kind = present[0];
    if (present.length !== 1 || kind === undefined) {
      const found = present.length === 0 ? 'neither' : present.map((k) => `"${k}"`).join(' and ');
      ctx.addIssue({
        code: 'custom',
        input: value,
        message: `expected exactly one of ${names}, found ${found}`,
      });
      return z.NEVER;
    }
    // The shape above gives each key its own schema, so the value has the type of the chosen option.
    return { kind, value: value[kind] } as Chosen<T>;
  });
}

/**
 * Messages for issues whose schema did not word its own. The helpers above word nearly all of them;
 * this keeps the rest in the same "expected …, found …" form instead of zod's English.
 */
export function defaultMessage(issue: z.core.$ZodRawIssue): string {
  const items = issue.origin === 'array' ? ' items' : '';
  switch (issue.code) {
    case 'invalid_type':
      return expectation(TYPE_WORDS[issue.expected] ?? issue.expected, issue.input);
    case 'unrecognized_keys':
      return issue.keys.map((k) => `unknown key ${quote(k)}`).join('; ');
    case 'invalid_value':
      return expectation(`one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`, issue.input);
    case 'too_small':
      return expectation(`at least ${String(issue.minimum)}${items}`, issue.input);
    case 'too_big':
      return expectation(`at most ${String(issue.maximum)}${items}`, issue.input);
    case 'not_multiple_of':
      return expectation(`a multiple of ${issue.divisor}`, issue.input);
    case 'invalid_format':
      return expectation(`a string in the ${issue.format} format`, issue.input);
    case 'invalid_union':
    case 'invalid_key':
    case 'invalid_element':
    case 'custom':
      return `invalid value: found ${describeValue(issue.input)}`;
  }
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
};

type Shape = 'string' | 'number' | 'boolean' | 'list' | 'mapping' | 'empty';

function shapeOf(value: unknown): Shape {
  if (value === null || value === undefined) return 'empty';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'mapping';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean') return 'boolean';
  return 'empty';
}

/**
 * A value that may be written in several shapes (a string or a mapping, say), each with its own
 * schema. The problems reported are those of the schema for the shape found, so a mapping with a
 * bad key is told about that key, not that "no alternative matched".
 */
export function oneShapeOf<T extends Partial<Record<Shape, z.ZodType>>>(what: string, shapes: T) {
  return z.unknown().transform((value, ctx): z.output<NonNullable<T[keyof T]>> => {
    const schema = shapes[shapeOf(value)];
    if (schema === undefined) {
      ctx.addIssue({ code: 'custom', input: value, message: expectation(what, value) });
      return z.NEVER;
    }
    const result = schema.safeParse(value, { reportInput: true, error: defaultMessage });
    if (!result.success) {
      // Re-raised here, their paths continue from this value's.
      for (const issue of result.error.issues) ctx.addIssue({ ...issue });
      return z.NEVER;
    }
    return result.data as z.output<NonNullable<T[keyof T]>>;
  });
}
