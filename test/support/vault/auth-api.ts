/**
 * The token and AppRole auth mounts: auth/token/{lookup,renew,revoke}-self and auth/approle/login
 * (developer.hashicorp.com/vault/api-docs/auth/token, .../auth/approle).
 */
import type { AppRoleBackend } from './approle.js';
import { parseDurationSeconds } from './duration.js';
import {
  badRequest,
  multiErrorText,
  NO_CONTENT,
  ok,
  tokenDenied,
  unsupportedOperation,
  VaultApiError,
  type ApiResponse,
  type Operation,
} from './http.js';
import type { Route } from './route.js';
import type { TokenEntry, TokenStore } from './tokens.js';

export function tokenRoute(tokens: TokenStore, sub: string): Route {
  const only = (
    operation: Operation,
    handle: (caller: TokenEntry, data: Readonly<Record<string, unknown>>) => ApiResponse,
  ): Route => ({
    mountType: 'token',
    handle(req, op, caller) {
      if (caller === undefined) throw tokenDenied();
      if (op !== operation) throw unsupportedOperation();
      return handle(caller, req.data);
    },
  });
  switch (sub) {
    // "Lookup a token (self)": GET; data.id is the token itself, as real Vault returns it.
    case 'lookup-self':
      return only('read', (caller) => ok({ mountType: 'token', data: tokens.describe(caller) }));
    // "Renew a token (self)": optional {"increment": "1h" | seconds}.
    case 'renew-self':
      return only('update', (caller, data) => {
        const increment =
          data['increment'] === undefined ? undefined : parseDurationSeconds(data['increment']);
        if (data['increment'] !== undefined && increment === undefined) {
          throw badRequest('error converting input for field "increment": not a duration');
        }
        const renewal = tokens.renew(caller, increment);
        return ok({
          mountType: 'token',
          auth: tokens.authBlock(caller, renewal.leaseDurationSeconds),
          warnings: renewal.warnings,
        });
      });
    // "Revoke a token (self)": 204.
    case 'revoke-self':
      return only('update', (caller) => {
        tokens.revoke(caller.id);
        return NO_CONTENT;
      });
    default:
      return unsupportedPath('token');
  }
}

export function appRoleRoute(tokens: TokenStore, approle: AppRoleBackend, sub: string): Route {
  if (sub !== 'login') return unsupportedPath('approle');
  return {
    mountType: 'approle',
    unauthenticated: true,
    handle(req, operation) {
      if (operation !== 'update') throw unsupportedOperation();
      const token = approle.login(req.data);
      return ok({ mountType: 'approle', auth: tokens.authBlock(token, tokens.ttlSeconds(token)) });
    },
  };
}

/** A path the backend has no pattern for: the framework's ErrUnsupportedPath, 404. */
export function unsupportedPath(mountType: string): Route {
  return {
    mountType,
    handle() {
      throw new VaultApiError(404, [multiErrorText(['unsupported path'])]);
    },
  };
}
