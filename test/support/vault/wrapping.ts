/**
 * Response wrapping (developer.hashicorp.com/vault/docs/concepts/response-wrapping and
 * api-docs/system/wrapping-unwrap): with X-Vault-Wrap-TTL a response is kept behind a single-use
 * token that expires after the TTL; sys/wrapping/unwrap gives the original response back once,
 * after which the token "is not valid or does not exist".
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from './clock.js';
import { rfc3339 } from './clock.js';

interface Wrapped {
  readonly body: unknown;
  readonly expiresMs: number;
}

export class WrappingStore {
  readonly #wrapped = new Map<string, Wrapped>();

  constructor(private readonly clock: Clock) {}

  /** Stores body and returns the `wrap_info` block (logical.HTTPWrapInfo). */
  wrap(
    body: unknown,
    ttlSeconds: number,
    creationPath: string,
    wrappedAccessor: string | undefined,
  ): Record<string, unknown> {
    const token = `hvs.${randomBytes(18).toString('base64url')}`;
    const now = this.clock.nowMs();
    this.#wrapped.set(token, { body, expiresMs: now + ttlSeconds * 1000 });
    return {
      token,
      accessor: randomBytes(18).toString('base64url'),
      ttl: ttlSeconds,
      creation_time: rfc3339(new Date(now)),
      creation_path: creationPath,
      ...(wrappedAccessor === undefined ? {} : { wrapped_accessor: wrappedAccessor }),
    };
  }

  isValid(token: string | undefined): token is string {
    if (token === undefined) return false;
    const entry = this.#wrapped.get(token);
    if (entry === undefined) return false;
    if (entry.expiresMs <= this.clock.nowMs()) {
      this.#wrapped.delete(token);
      return false;
    }
    return true;
  }

  /** The wrapped response, once; undefined when the token is unknown, used or expired. */
  unwrap(token: string | undefined): unknown {
    if (!this.isValid(token)) return undefined;
    const entry = this.#wrapped.get(token);
    this.#wrapped.delete(token);
    return entry?.body;
  }
}
