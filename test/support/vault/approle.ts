/**
 * AppRole: roles with a role_id and secret_ids, and login. Follows
 * developer.hashicorp.com/vault/api-docs/auth/approle ("Login with AppRole") and
 * builtin/credential/approle/path_login.go for the error texts: a missing field names it, and an
 * unknown role_id or a wrong secret_id both answer 400 "invalid role or secret ID", so a caller
 * cannot tell which half was wrong.
 */
import { randomUUID } from 'node:crypto';
import { badRequest } from './http.js';
import type { TokenEntry, TokenStore } from './tokens.js';

export interface AppRoleSpec {
  readonly policies: readonly string[];
  readonly tokenTtlSeconds?: number | undefined;
  readonly tokenMaxTtlSeconds?: number | undefined;
}

interface Role extends AppRoleSpec {
  readonly name: string;
  readonly roleId: string;
  readonly secretIds: Set<string>;
}

export class AppRoleBackend {
  readonly #byRoleId = new Map<string, Role>();
  readonly #byName = new Map<string, Role>();

  constructor(private readonly tokens: TokenStore) {}

  /** Creates (or replaces) a role and issues one secret_id for it. */
  createRole(name: string, spec: AppRoleSpec): { roleId: string; secretId: string } {
    const previous = this.#byName.get(name);
    if (previous !== undefined) this.#byRoleId.delete(previous.roleId);
    const role: Role = { ...spec, name, roleId: randomUUID(), secretIds: new Set([randomUUID()]) };
    this.#byName.set(name, role);
    this.#byRoleId.set(role.roleId, role);
    const [secretId] = role.secretIds;
    return { roleId: role.roleId, secretId: secretId ?? '' };
  }

  login(data: Readonly<Record<string, unknown>>): TokenEntry {
    const roleId = typeof data['role_id'] === 'string' ? data['role_id'].trim() : '';
    if (roleId === '') throw badRequest('missing role_id');
    const role = this.#byRoleId.get(roleId);
    if (role === undefined) throw badRequest('invalid role or secret ID');
    const secretId = typeof data['secret_id'] === 'string' ? data['secret_id'].trim() : '';
    if (secretId === '') throw badRequest('missing secret_id');
    if (!role.secretIds.has(secretId)) throw badRequest('invalid role or secret ID');
    return this.tokens.create({
      policies: role.policies,
      path: 'auth/approle/login',
      displayName: 'approle',
      ttlSeconds: role.tokenTtlSeconds,
      backendMaxTtlSeconds: role.tokenMaxTtlSeconds,
      renewable: true,
      meta: { role_name: role.name },
      orphan: true,
    });
  }
}
