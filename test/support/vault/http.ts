/**
 * The HTTP surface shared by every handler: how a request is read into Vault's logical request and
 * how answers are shaped. Shapes follow Vault's sdk/logical (translate_response.go HTTPResponse,
 * response_util.go RespondError): a success is the full envelope, an error is `{"errors":[...]}`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { parseDurationSeconds } from './duration.js';

/** Vault's logical operations (sdk/logical/request.go). `create` is decided later, by existence. */
export type Operation = 'read' | 'list' | 'create' | 'update' | 'delete' | 'patch';

export interface ApiRequest {
  /** Path after /v1/, percent-decoded; a list request's path always ends in "/" (http/logical.go). */
  readonly path: string;
  readonly operation: Operation;
  /** JSON body for writes, query parameters for reads, lists and deletes. */
  readonly data: Readonly<Record<string, unknown>>;
  /** X-Vault-Token, or the bearer token of an Authorization header. */
  readonly token: string | undefined;
  /** X-Vault-Wrap-TTL in seconds, when the caller asked for response wrapping. */
  readonly wrapTtlSeconds: number | undefined;
}

export interface ApiResponse {
  readonly status: number;
  /** JSON body; absent for 204 and for HEAD answers. */
  readonly body?: unknown;
}

/** A failure answered as `{"errors":[...]}` with the given status. */
export class VaultApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: readonly string[],
  ) {
    super(errors.join('; ') || `HTTP ${status}`);
    this.name = 'VaultApiError';
  }
}

/**
 * hashicorp/go-multierror's Error(): what Vault sends when an error passed through core's
 * multierror.Append rather than a backend's logical.ErrorResponse.
 */
export function multiErrorText(errors: readonly string[]): string {
  const head = errors.length === 1 ? '1 error occurred:' : `${errors.length} errors occurred:`;
  return `${head}\n${errors.map((e) => `\t* ${e}`).join('\n')}\n\n`;
}

/** No token, an unknown or an expired one: CheckToken returns the bare logical.ErrPermissionDenied. */
export function tokenDenied(): VaultApiError {
  return new VaultApiError(403, ['permission denied']);
}

/** The ACL refused the operation: CheckToken wraps ErrPermissionDenied in a multierror. */
export function aclDenied(): VaultApiError {
  return new VaultApiError(403, [multiErrorText(['permission denied'])]);
}

/** A backend answered logical.ErrorResponse(msg) with ErrInvalidRequest (or no error): 400. */
export function badRequest(message: string): VaultApiError {
  return new VaultApiError(400, [message]);
}

/** The framework found the path but not the operation: 405, via core's multierror. */
export function unsupportedOperation(): VaultApiError {
  return new VaultApiError(405, [multiErrorText(['unsupported operation'])]);
}

/** A read of nothing: RespondErrorCommon turns a nil response into 404 with an empty list. */
export function notFound(): VaultApiError {
  return new VaultApiError(404, []);
}

export interface EnvelopeParts {
  readonly data?: unknown;
  readonly auth?: unknown;
  readonly warnings?: readonly string[];
  readonly wrapInfo?: unknown;
  /** Set by the router on routed responses; "" in raw bodies a backend built itself. */
  readonly mountType: string;
}

/** logical.HTTPResponse, fields in Vault's order. */
export function envelope(parts: EnvelopeParts): Record<string, unknown> {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: parts.data ?? null,
    wrap_info: parts.wrapInfo ?? null,
    warnings: parts.warnings !== undefined && parts.warnings.length > 0 ? parts.warnings : null,
    auth: parts.auth ?? null,
    mount_type: parts.mountType,
  };
}

export function ok(parts: EnvelopeParts): ApiResponse {
  return { status: 200, body: envelope(parts) };
}

export const NO_CONTENT: ApiResponse = { status: 204 };

/** A successful write with nothing to say is 204; with warnings it is 200 (RespondErrorCommon). */
export function noContentOrWarnings(warnings: readonly string[], mountType: string): ApiResponse {
  return warnings.length === 0 ? NO_CONTENT : ok({ warnings, mountType });
}

export function errorBody(errors: readonly string[]): { errors: string[] } {
  return { errors: [...errors] };
}

const TRUE_STRINGS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const BOOL_STRINGS = new Set([...TRUE_STRINGS, '0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Go's strconv.ParseBool, which Vault uses for `?list=` and TypeBool fields given as strings. */
export function parseGoBool(raw: unknown): boolean | undefined {
  if (typeof raw === 'boolean') return raw;
  if (typeof raw === 'string' && BOOL_STRINGS.has(raw)) return TRUE_STRINGS.has(raw);
  return undefined;
}

/** Integers the way mapstructure.WeakDecode reads them into an int: numbers and numeric strings. */
export function parseWeakInt(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isInteger(raw) ? raw : undefined;
  if (typeof raw === 'string' && /^-?\d+$/.test(raw.trim())) return Number(raw.trim());
  return undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Builds the logical request the way Vault's http/logical.go buildLogicalRequestNoAuth does:
 * GET is read (list with ?list=true), LIST is list, POST and PUT are update, DELETE is delete;
 * list paths get a trailing slash; a write's body must be a JSON object.
 */
export function parseApiRequest(
  method: string,
  url: URL,
  headers: IncomingHttpHeaders,
  rawBody: string,
): ApiRequest {
  const path = apiPathOf(url.pathname);
  if (path === undefined) throw notFound();
  if (path.split('/').includes('..')) throw badRequest('relative paths not supported');

  const query: Record<string, unknown> = Object.fromEntries(url.searchParams);
  let operation: Operation;
  let data: Record<string, unknown> = query;
  switch (method) {
    case 'GET':
    case 'HEAD': {
      const list = query['list'];
      delete query['list'];
      operation = list !== undefined && parseGoBool(list) === true ? 'list' : 'read';
      break;
    }
    case 'LIST':
      operation = 'list';
      break;
    case 'POST':
    case 'PUT':
      operation = 'update';
      data = parseJsonObject(rawBody);
      break;
    case 'PATCH':
      operation = 'patch';
      data = parseJsonObject(rawBody);
      break;
    case 'DELETE':
      operation = 'delete';
      break;
    default:
      throw new VaultApiError(405, []);
  }

  return {
    path: operation === 'list' && !path.endsWith('/') ? `${path}/` : path,
    operation,
    data,
    token: tokenOf(headers),
    wrapTtlSeconds: wrapTtlOf(headers),
  };
}

/** The API path after "/v1/", percent-decoded, or undefined for anything outside /v1/. */
export function apiPathOf(pathname: string): string | undefined {
  if (!pathname.startsWith('/v1/')) return undefined;
  try {
    return decodeURIComponent(pathname.slice('/v1/'.length));
  } catch {
    return undefined;
  }
}

function parseJsonObject(rawBody: string): Record<string, unknown> {
  if (rawBody.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawBody) as unknown;
  } catch (err) {
    throw badRequest(`failed to parse JSON input: ${(err as Error).message}`);
  }
  if (!isRecord(parsed)) throw badRequest('failed to parse JSON input: not a JSON object');
  return parsed;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function tokenOf(headers: IncomingHttpHeaders): string | undefined {
  const vaultToken = headerValue(headers, 'x-vault-token');
  if (vaultToken !== undefined && vaultToken !== '') return vaultToken;
  const authz = headerValue(headers, 'authorization');
  const bearer = authz?.match(/^Bearer\s+(\S+)$/)?.[1];
  return bearer;
}

function wrapTtlOf(headers: IncomingHttpHeaders): number | undefined {
  const raw = headerValue(headers, 'x-vault-wrap-ttl');
  if (raw === undefined || raw === '') return undefined;
  const seconds = parseDurationSeconds(raw);
  if (seconds === undefined) throw badRequest('error parsing X-Vault-Wrap-TTL header');
  return seconds;
}
