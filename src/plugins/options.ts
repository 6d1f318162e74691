/**
 * Each plugin validates the `options` mapping of its PFs with its own strict zod schema; this turns
 * the first problem into one line naming the plugin, the PF and the key.
 */
import { z } from 'zod';
import { VfbError } from '../errors.js';
import type { PfConfig } from './contract.js';

export function parsePluginOptions<S extends z.ZodType>(
  plugin: string,
  pf: PfConfig,
  schema: S,
): z.output<S> {
  const parsed = schema.safeParse(pf.options ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new VfbError(
    'CONFIG_INVALID',
    `plugin ${plugin}, PF ${pf.address}: ${describeIssue(issue, schema)}`,
    {
      hint: `fix the options of PF ${pf.address} in /etc/vfbroker/broker.yaml (plugins/${plugin}/README.md lists them)`,
    },
  );
}

function describeIssue(issue: z.core.$ZodIssue | undefined, schema: z.ZodType): string {
  if (!issue) return 'invalid options';
  const at = ['options', ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))].join(
    '',
  );
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    const known = issue.path.length === 0 && schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
    const guess = closest(key, known);
    return `${at}: unknown key ${JSON.stringify(key)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}`;
  }
  return `${at}: ${issue.message}`;
}

/** The known key within edit distance 2 of a misspelt one, if any. */
function closest(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
