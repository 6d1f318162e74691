/**
 * The KV v2 HTTP API of one mount, per developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2:
 * data/, metadata/, delete/, undelete/, destroy/ and config, with the path patterns, operations,
 * status codes and error texts of vault-plugin-secrets-kv.
 */
import {
  badRequest,
  envelope,
  isRecord,
  NO_CONTENT,
  noContentOrWarnings,
  notFound,
  ok,
  parseGoBool,
  parseWeakInt,
  unsupportedOperation,
  multiErrorText,
  type ApiRequest,
  type ApiResponse,
  type Operation,
} from './http.js';
import { parseDurationSeconds } from './duration.js';
import type { Kv2Engine, MetadataUpdate } from './kv2.js';
import type { Route } from './route.js';

const MOUNT_TYPE = 'kv';

/** path_metadata.go limits on custom_metadata. */
const MAX_CUSTOM_METADATA_KEYS = 64;
const MAX_CUSTOM_METADATA_KEY_LENGTH = 128;
const MAX_CUSTOM_METADATA_VALUE_LENGTH = 512;
const CUSTOM_METADATA_PREFIX = 'custom_metadata validation failed';

type Handlers = Partial<Record<Operation, (req: ApiRequest) => ApiResponse>>;

/** The route for `sub`, the request path below the mount ("data/a/b", "metadata/", "config"). */
export function kv2Route(engine: Kv2Engine, sub: string): Route {
  const slash = sub.indexOf('/');
  const head = slash < 0 ? sub : sub.slice(0, slash);
  const key = slash < 0 ? undefined : sub.slice(slash + 1);

  if (head === 'config' && key === undefined) return route(configHandlers(engine));
  if (key !== undefined) {
    switch (head) {
      // pathData's pattern is `data/(?P<path>.*?[^/]$)`: a non-empty key not ending in "/".
      case 'data':
        if (key !== '' && !key.endsWith('/'))
          return route(dataHandlers(engine, key), () => engine.exists(key));
        break;
      case 'metadata':
        return route(metadataHandlers(engine, key), () => engine.exists(key));
      case 'delete':
        return route({
          update: (req) =>
            versionsOp(req, 'No version number provided', (v) => engine.deleteVersions(key, v)),
        });
      case 'undelete':
        return route({
          update: (req) =>
            versionsOp(req, 'No version number provided', (v) => engine.undeleteVersions(key, v)),
        });
      case 'destroy':
        return route({
          update: (req) =>
            versionsOp(req, 'no version number provided', (v) => engine.destroyVersions(key, v)),
        });
    }
  }
  return { mountType: MOUNT_TYPE, handle: invalidPath };
}

function route(handlers: Handlers, exists?: () => boolean): Route {
  return {
    mountType: MOUNT_TYPE,
    ...(exists === undefined ? {} : { exists }),
    handle(req, operation) {
      // A write is routed to the same handler whether the ACL saw it as create or update.
      const handler = handlers[operation === 'create' ? 'update' : operation];
      if (handler === undefined) throw unsupportedOperation();
      return handler(req);
    },
  };
}

/**
 * Anything else under a KV v2 mount: the backend's catch-all answers 404 with a warning and no
 * errors (the raw body, so mount_type is "").
 */
function invalidPath(_req: ApiRequest, operation: Operation): ApiResponse {
  const verb = { read: 'get', list: 'list', delete: 'delete', create: 'put', update: 'put', patch: 'patch' }[
    operation
  ];
  return {
    status: 404,
    body: envelope({
      mountType: '',
      warnings: [
        `Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv ${verb}' for this operation.`,
      ],
    }),
  };
}

function dataHandlers(engine: Kv2Engine, key: string): Handlers {
  return {
    // "Read secret version": ?version=N, 0 or absent means the latest.
    read(req) {
      const version = req.data['version'] === undefined ? 0 : parseWeakInt(req.data['version']);
      if (version === undefined)
        throw badRequest(`error converting input for field "version": not an integer`);
      const result = engine.read(key, version);
      switch (result.kind) {
        case 'missing':
          throw notFound();
        case 'gone':
          // path_data.go: a deleted or destroyed version answers 404 with its metadata and null data.
          return {
            status: 404,
            body: envelope({ mountType: '', data: { data: null, metadata: result.metadata } }),
          };
        case 'found':
          return ok({ mountType: MOUNT_TYPE, data: { data: result.data, metadata: result.metadata } });
      }
    },
    // "Create/Update secret": {"options":{"cas":N},"data":{...}}.
    update(req) {
      const data = req.data['data'];
      if (data === undefined || data === null) throw badRequest('no data provided');
      if (!isRecord(data))
        throw badRequest('error converting input for field "data": expected a JSON object');
      return ok({ mountType: MOUNT_TYPE, data: engine.write(key, data, casOption(req.data['options'])) });
    },
    // "Delete latest version of secret": 204 whether or not there was anything to delete.
    delete() {
      engine.deleteLatest(key);
      return NO_CONTENT;
    },
  };
}

function casOption(options: unknown): number | undefined {
  if (!isRecord(options) || !('cas' in options)) return undefined;
  const cas = parseWeakInt(options['cas']);
  if (cas === undefined) throw badRequest('error parsing check-and-set parameter');
  return cas;
}

/** delete/, undelete/ and destroy/ take `versions` as a list of integers (TypeCommaIntSlice). */
function versionsOp(req: ApiRequest, emptyMessage: string, apply: (versions: number[]) => void): ApiResponse {
  const versions = parseVersions(req.data['versions']);
  if (versions.length === 0) throw badRequest(emptyMessage);
  apply(versions);
  return NO_CONTENT;
}

function parseVersions(raw: unknown): number[] {
  if (raw === undefined || raw === null) return [];
  const items = Array.isArray(raw) ? (raw as unknown[]) : typeof raw === 'string' ? raw.split(',') : [raw];
  return items
    .filter((item) => !(typeof item === 'string' && item.trim() === ''))
    .map((item) => {
      const n = parseWeakInt(typeof item === 'string' ? item.trim() : item);
      if (n === undefined)
        throw badRequest(
          `error converting input for field "versions": ${JSON.stringify(item)} is not an integer`,
        );
      return n;
    });
}

function metadataHandlers(engine: Kv2Engine, key: string): Handlers {
  return {
    read() {
      const data = engine.readMetadata(key);
      if (data === undefined) throw notFound();
      return ok({ mountType: MOUNT_TYPE, data });
    },
    // "List secrets": keys are not filtered by policy; an empty folder is 404 (RespondErrorCommon).
    list() {
      const keys = engine.list(key);
      if (keys.length === 0) throw notFound();
      return ok({ mountType: MOUNT_TYPE, data: { keys } });
    },
    update(req) {
      if (key === '') throw badRequest('missing path');
      return noContentOrWarnings(engine.writeMetadata(key, metadataUpdate(req.data)), MOUNT_TYPE);
    },
    delete() {
      engine.deleteMetadata(key);
      return NO_CONTENT;
    },
  };
}

function metadataUpdate(data: Readonly<Record<string, unknown>>): MetadataUpdate {
  const update: {
    maxVersions?: number;
    casRequired?: boolean;
    deleteVersionAfterSeconds?: number;
    customMetadata?: Record<string, string>;
  } = {};
  if (data['max_versions'] !== undefined) update.maxVersions = fieldInt(data, 'max_versions');
  if (data['cas_required'] !== undefined) update.casRequired = fieldBool(data, 'cas_required');
  if (data['delete_version_after'] !== undefined)
    update.deleteVersionAfterSeconds = fieldDuration(data, 'delete_version_after');
  if (data['custom_metadata'] !== undefined) update.customMetadata = customMetadata(data['custom_metadata']);
  return update;
}

/** parseCustomMetadata + validateCustomMetadata, with Vault's (multierror-formatted) messages. */
function customMetadata(raw: unknown): Record<string, string> {
  if (!isRecord(raw)) throw badRequest(`${CUSTOM_METADATA_PREFIX}: expected a map of strings`);
  const parsed: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'string') parsed[k] = v;
    else if (typeof v === 'number') parsed[k] = String(v);
    else if (typeof v === 'boolean') parsed[k] = v ? '1' : '0';
    else throw badRequest(`${CUSTOM_METADATA_PREFIX}: value for key ${JSON.stringify(k)} is not a string`);
  }
  const entries = Object.entries(parsed);
  if (entries.length > MAX_CUSTOM_METADATA_KEYS) {
    throw badRequest(
      multiErrorText([
        `${CUSTOM_METADATA_PREFIX}: payload must contain at most ${MAX_CUSTOM_METADATA_KEYS} keys, provided ${entries.length}`,
      ]),
    );
  }
  const errors: string[] = [];
  for (const [k, v] of entries) {
    const keyLen = Buffer.byteLength(k);
    if (keyLen === 0 || keyLen > MAX_CUSTOM_METADATA_KEY_LENGTH) {
      errors.push(
        `${CUSTOM_METADATA_PREFIX}: length of key ${JSON.stringify(k)} is ${keyLen} but must be 0 < len(key) <= ${MAX_CUSTOM_METADATA_KEY_LENGTH}`,
      );
    }
    const valueLen = Buffer.byteLength(v);
    if (valueLen === 0 || valueLen > MAX_CUSTOM_METADATA_VALUE_LENGTH) {
      errors.push(
        `${CUSTOM_METADATA_PREFIX}: length of value for key ${JSON.stringify(k)} is ${valueLen} but must be 0 < len(value) <= ${MAX_CUSTOM_METADATA_VALUE_LENGTH}`,
      );
    }
    if (!isPrintable(k)) {
      errors.push(
        `${CUSTOM_METADATA_PREFIX}: key ${JSON.stringify(k)} (${k}) contains unprintable characters`,
      );
    }
    if (!isPrintable(v)) {
      errors.push(
        `${CUSTOM_METADATA_PREFIX}: value for key ${JSON.stringify(k)} contains unprintable characters`,
      );
    }
  }
  if (errors.length > 0) throw badRequest(multiErrorText(errors));
  return parsed;
}

/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
function isPrintable(s: string): boolean {
  return /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]*$/u.test(s);
}

function configHandlers(engine: Kv2Engine): Handlers {
  return {
    // "Read KV engine configuration"
    read() {
      return ok({
        mountType: MOUNT_TYPE,
        data: {
          cas_required: engine.config.casRequired,
          delete_version_after: `${engine.config.deleteVersionAfterSeconds}s`,
          max_versions: engine.config.maxVersions,
        },
      });
    },
    // "Configure the KV engine"
    update(req) {
      if (req.data['max_versions'] !== undefined)
        engine.config.maxVersions = fieldInt(req.data, 'max_versions');
      if (req.data['cas_required'] !== undefined)
        engine.config.casRequired = fieldBool(req.data, 'cas_required');
      if (req.data['delete_version_after'] !== undefined) {
        engine.config.deleteVersionAfterSeconds = fieldDuration(req.data, 'delete_version_after');
      }
      return NO_CONTENT;
    },
  };
}

function fieldInt(data: Readonly<Record<string, unknown>>, field: string): number {
  const n = parseWeakInt(data[field]);
  if (n === undefined || n < 0)
    throw badRequest(`error converting input for field "${field}": not a non-negative integer`);
  return n;
}

function fieldBool(data: Readonly<Record<string, unknown>>, field: string): boolean {
  const b = parseGoBool(data[field]);
  if (b === undefined) throw badRequest(`error converting input for field "${field}": not a boolean`);
  return b;
}

function fieldDuration(data: Readonly<Record<string, unknown>>, field: string): number {
  const seconds = parseDurationSeconds(data[field]);
  if (seconds === undefined) throw badRequest(`error converting input for field "${field}": not a duration`);
  return seconds;
}
