/**
 * The server's state and the path every API request takes, in Vault's order
 * (vault/request_handling.go): sys/health answers even when sealed; a sealed server answers
 * 503 "Vault is sealed" to everything else; login paths need no token; any other path needs a
 * live token (else 403 "permission denied"), then the ACL decides with create-vs-update settled by
 * the backend's existence check (else 403 in multierror form), and only then is the request routed.
 */
import { randomUUID } from 'node:crypto';
import { AppRoleBackend } from './approle.js';
import { appRoleRoute, tokenRoute, unsupportedPath } from './auth-api.js';
import { Clock } from './clock.js';
import {
  aclDenied,
  badRequest,
  isRecord,
  ok,
  parseWeakInt,
  tokenDenied,
  unsupportedOperation,
  VaultApiError,
  type ApiRequest,
  type ApiResponse,
} from './http.js';
import { kv2Route } from './kv2-api.js';
import { Kv2Engine } from './kv2.js';
import { PolicyStore } from './policy.js';
import type { Route } from './route.js';
import { TokenStore } from './tokens.js';
import { WrappingStore } from './wrapping.js';

/** The Vault release whose behaviour this server follows, reported by sys/health. */
export const EMULATED_VAULT_VERSION = '1.19.0';

/** Mount paths Vault keeps for itself. */
const RESERVED_MOUNTS = new Set(['sys', 'auth', 'cubbyhole', 'identity']);

export class VaultCore {
  readonly clock = new Clock();
  readonly tokens = new TokenStore(this.clock);
  readonly policies = new PolicyStore();
  readonly approle = new AppRoleBackend(this.tokens);
  readonly wrapping = new WrappingStore(this.clock);
  readonly clusterId = randomUUID();
  sealed = false;
  readonly #mounts = new Map<string, Kv2Engine>();

  /** Like `vault secrets enable -path=<mount> kv-v2`. */
  enableKv2(mount: string): void {
    const path = mount.replace(/^\/+|\/+$/g, '');
    if (path === '' || RESERVED_MOUNTS.has(path.split('/')[0] ?? '')) {
      throw new Error(`enableKv2: cannot mount at ${JSON.stringify(mount)}`);
    }
    for (const existing of this.#mounts.keys()) {
      if (path === existing || path.startsWith(`${existing}/`) || existing.startsWith(`${path}/`)) {
        throw new Error(`enableKv2: path is already in use at ${existing}/`);
      }
    }
    this.#mounts.set(path, new Kv2Engine(this.clock));
  }

  handle(req: ApiRequest): ApiResponse {
    if (req.path === 'sys/health') return this.#health(req);
    if (this.sealed) throw new VaultApiError(503, ['Vault is sealed']);
    if (req.path === 'sys/wrapping/unwrap') return this.#unwrap(req);

    const route = this.#route(req.path);
    if (route?.unauthenticated === true)
      return this.#maybeWrap(req, route.handle(req, req.operation, undefined));

    const caller = this.tokens.lookup(req.token);
    if (caller === undefined) throw tokenDenied();
    let operation = req.operation;
    if (operation === 'update' && route?.exists !== undefined)
      operation = route.exists() ? 'update' : 'create';
    if (!this.policies.acl(caller.policies).allows(req.path, operation)) throw aclDenied();
    if (route === undefined)
      throw new VaultApiError(404, [`no handler for route "${req.path}". route entry not found.`]);
    return this.#maybeWrap(req, route.handle(req, operation, caller));
  }

  #route(path: string): Route | undefined {
    if (path.startsWith('auth/token/')) return tokenRoute(this.tokens, path.slice('auth/token/'.length));
    if (path.startsWith('auth/approle/')) {
      return appRoleRoute(this.tokens, this.approle, path.slice('auth/approle/'.length));
    }
    if (path.startsWith('sys/')) return unsupportedPath('system');
    let mount: string | undefined;
    for (const m of this.#mounts.keys()) {
      if ((path === m || path.startsWith(`${m}/`)) && (mount === undefined || m.length > mount.length))
        mount = m;
    }
    const engine = mount === undefined ? undefined : this.#mounts.get(mount);
    if (mount === undefined || engine === undefined) return undefined;
    return kv2Route(engine, path.slice(mount.length + 1));
  }

  /**
   * api-docs/system/health "Read health information": 200 active, 503 sealed (or the codes given
   * by ?activecode= / ?sealedcode=); never wrapped, never needs a token.
   */
  #health(req: ApiRequest): ApiResponse {
    if (req.operation !== 'read') throw unsupportedOperation();
    const codeParam = this.sealed ? 'sealedcode' : 'activecode';
    const status = parseWeakInt(req.data[codeParam]) ?? (this.sealed ? 503 : 200);
    return {
      status,
      body: {
        initialized: true,
        sealed: this.sealed,
        standby: false,
        performance_standby: false,
        replication_performance_mode: 'disabled',
        replication_dr_mode: 'disabled',
        server_time_utc: Math.floor(this.clock.nowMs() / 1000),
        version: EMULATED_VAULT_VERSION,
        enterprise: false,
        cluster_name: 'vault-cluster-vfbroker-test',
        cluster_id: this.clusterId,
      },
    };
  }

  /**
   * api-docs/system/wrapping-unwrap: the wrapping token is either the request's own token or the
   * `token` body field (then the request's token must be allowed to unwrap). Checked before the
   * request's token, as http/logical.go's wrappingVerificationFunc does.
   */
  #unwrap(req: ApiRequest): ApiResponse {
    if (req.operation !== 'update') throw unsupportedOperation();
    const invalid = (): VaultApiError => badRequest('wrapping token is not valid or does not exist');
    const bodyToken =
      typeof req.data['token'] === 'string' && req.data['token'] !== '' ? req.data['token'] : undefined;
    if (bodyToken === undefined) {
      const body = this.wrapping.unwrap(req.token);
      if (body === undefined) throw invalid();
      return { status: 200, body };
    }
    if (!this.wrapping.isValid(bodyToken)) throw invalid();
    const caller = this.tokens.lookup(req.token);
    if (caller === undefined) throw tokenDenied();
    if (!this.policies.acl(caller.policies).allows(req.path, 'update')) throw aclDenied();
    return { status: 200, body: this.wrapping.unwrap(bodyToken) };
  }

  /** With X-Vault-Wrap-TTL, a response with a body is replaced by its wrap_info. */
  #maybeWrap(req: ApiRequest, res: ApiResponse): ApiResponse {
    if (
      req.wrapTtlSeconds === undefined ||
      req.wrapTtlSeconds <= 0 ||
      res.status !== 200 ||
      res.body === undefined
    ) {
      return res;
    }
    const auth = isRecord(res.body) ? res.body['auth'] : undefined;
    const wrappedAccessor =
      isRecord(auth) && typeof auth['accessor'] === 'string' ? auth['accessor'] : undefined;
    const wrapInfo = this.wrapping.wrap(res.body, req.wrapTtlSeconds, req.path, wrappedAccessor);
    return ok({ mountType: '', wrapInfo });
  }
}
