/**
 * The one place that talks HTTP to Vault, through node-vault 0.12.0 — whose defaults we do not
 * trust (REFERENCE.md §6), so each is pinned here:
 * - it reads VAULT_ADDR, VAULT_TOKEN, VAULT_PREFIX and VAULT_NAMESPACE from the environment: we pass
 *   the endpoint and reset token, prefix and namespace after construction, so only our config counts;
 * - any non-empty VAULT_SKIP_VERIFY turns certificate checks off: `rpDefaults.strictSSL` overrides it,
 *   and our own agents set `rejectUnauthorized: true` explicitly (which also beats
 *   NODE_TLS_REJECT_UNAUTHORIZED=0);
 * - DEBUG=node-vault prints request bodies (secret_ids, tokens): its debug function is a no-op;
 * - it has no timeout: every request carries one, and a deadline of our own bounds the whole
 *   exchange (axios' timeout is an idle timeout a slow-dripping peer can stretch);
 * - a token in the config-level requestOptions headers is frozen for ever: the token is passed per
 *   request, and node-vault's own `client.token` stays empty.
 * Only `client.request()` is used; its generated helpers (tokenRenewSelf, approleLogin…) overwrite
 * the client's token behind our back.
 */
import http from 'node:http';
import https from 'node:https';
import nodeVault from 'node-vault';
import { VfbError } from '../../errors.js';
import { transportError, type VaultReply } from './vault-errors.js';

export type VaultMethod = 'GET' | 'POST' | 'DELETE';

export interface VaultHttpOptions {
  /** http(s)://host:port of the Vault server. */
  readonly address: string;
  /** PEM of the CA(s) that sign the server certificate; the system CAs when absent. */
  readonly ca?: string;
  readonly timeoutMs: number;
}

export interface VaultRequest {
  /** Sent as X-Vault-Token; absent for a login. */
  readonly token?: string;
  readonly body?: Record<string, unknown>;
}

const DEADLINE = Symbol('deadline');

export class VaultHttp {
  /** "Vault at <origin>", the subject of every error message. */
  readonly subject: string;
  readonly #client: ReturnType<typeof nodeVault>;
  readonly #timeoutMs: number;
  readonly #httpAgent = new http.Agent({ keepAlive: true });
  readonly #httpsAgent: https.Agent;

  constructor(options: VaultHttpOptions) {
    let url: URL;
    try {
      url = new URL(options.address);
    } catch {
      throw new VfbError(
        'CONFIG_INVALID',
        `store.address ${JSON.stringify(options.address.slice(0, 80))} is not a URL`,
      );
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new VfbError('CONFIG_INVALID', `store.address must be an http(s) URL, not ${url.protocol}`);
    }
    // The origin only: a path, query or user:password in the address would end up in messages.
    this.subject = `Vault at ${url.origin}`;
    this.#timeoutMs = options.timeoutMs;
    this.#httpsAgent = new https.Agent({
      keepAlive: true,
      rejectUnauthorized: true,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    });
    const config = {
      endpoint: url.origin,
      apiVersion: 'v1',
      debug: () => undefined,
      rpDefaults: { strictSSL: true },
    };
    this.#client = nodeVault(config);
    this.#client.token = '';
    Object.assign(this.#client, { pathPrefix: '', namespace: undefined });
  }

  /**
   * One request to /v1/<path>. Resolves with the reply for any HTTP status (the caller decides what a
   * 404 means); rejects with TIMEOUT or UNAVAILABLE when no answer came.
   */
  async send(method: VaultMethod, path: string, op: string, request: VaultRequest = {}): Promise<VaultReply> {
    const call = this.#client
      .request({
        method,
        path: `/${path}`,
        headers: request.token === undefined ? {} : { 'X-Vault-Token': request.token },
        ...(request.body === undefined ? {} : { json: request.body }),
        timeout: this.#timeoutMs,
        httpAgent: this.#httpAgent,
        httpsAgent: this.#httpsAgent,
      })
      .then(
        (body: unknown): VaultReply => ({ status: 200, body }),
        (err: unknown): VaultReply => {
          // node-vault rejects every non-2xx status with { response: { statusCode, body } }; anything
          // else is a transport error (axios), which carries our headers: keep nothing of it but its code.
          const response = (err as { response?: { statusCode?: unknown; body?: unknown } } | null)?.response;
          if (typeof response?.statusCode === 'number')
            return { status: response.statusCode, body: response.body };
          throw transportError(this.subject, op, err, this.#timeoutMs);
        },
      );
    let cancel = (): void => undefined;
    const deadline = new Promise<typeof DEADLINE>((resolve) => {
      const timer = setTimeout(() => resolve(DEADLINE), this.#timeoutMs);
      cancel = () => clearTimeout(timer);
    });
    try {
      const reply = await Promise.race([call, deadline]);
      if (reply === DEADLINE) throw transportError(this.subject, op, { code: 'ETIMEDOUT' }, this.#timeoutMs);
      return reply;
    } finally {
      cancel();
    }
  }

  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }
}
