/**
 * Checking a plugin's manifest when it is loaded, so that a broken or incompatible plugin fails at
 * start-up with its own name and source, not later on the first PF it touches.
 */
import { z } from 'zod';
import { VfbError } from '../errors.js';
import { PLUGIN_API_VERSION, type PluginManifest } from './contract.js';

const PCI_ID = /^[0-9a-f]{4}:[0-9a-f]{4}$/;

const manifestSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'expected lower-case letters, digits and dashes'),
    apiVersion: z.string().regex(/^\^\d{1,3}(\.\d{1,3})?$/, 'expected a range such as "^1" or "^1.0"'),
    ids: z
      .array(
        z.string().regex(PCI_ID, 'expected a PCI ID as vendor:device in lower-case hex, e.g. "8086:10c9"'),
      )
      .refine((ids) => new Set(ids).size === ids.length, 'lists an ID twice'),
    needsToken: z.boolean(),
    rotation: z.enum(['live', 'drain', 'none']),
    description: z.string().min(1).max(200),
  })
  .refine((m) => m.needsToken === (m.rotation !== 'none'), {
    message: 'a plugin needs a token exactly when its rotation mode is live or drain',
    path: ['rotation'],
  });

/** Validates a manifest found in a module; `source` (path or "built-in") goes into the error. */
export function checkManifest(raw: unknown, source: string): PluginManifest {
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    const name =
      typeof (raw as { name?: unknown } | null)?.name === 'string'
        ? `plugin ${(raw as { name: string }).name}`
        : 'plugin';
    throw new VfbError(
      'CONFIG_INVALID',
      `${name} from ${source} has an invalid manifest: ${where}${issue?.message ?? 'invalid'}`,
    );
  }
  const manifest = Object.freeze({ ...parsed.data, ids: Object.freeze([...parsed.data.ids]) });
  if (!apiSatisfies(manifest.apiVersion)) {
    const host = `${PLUGIN_API_VERSION.major}.${PLUGIN_API_VERSION.minor}`;
    throw new VfbError(
      'CONFIG_INVALID',
      `plugin ${manifest.name} from ${source} needs plugin API ${manifest.apiVersion}, this vfbroker provides ${host}`,
      { hint: 'use a version of the plugin built for this vfbroker, or upgrade vfbroker' },
    );
  }
  return manifest;
}

/** "^M" accepts any M.x; "^M.m" accepts M.m and later minors. */
export function apiSatisfies(range: string): boolean {
  const m = /^\^(\d+)(?:\.(\d+))?$/.exec(range);
  if (!m) return false;
  return Number(m[1]) === PLUGIN_API_VERSION.major && Number(m[2] ?? 0) <= PLUGIN_API_VERSION.minor;
}
