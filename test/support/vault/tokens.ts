/**
 * The token store: service tokens with a TTL, an optional max TTL and renewal, on the server's own
 * clock. Follows developer.hashicorp.com/vault/api-docs/auth/token ("Lookup a token (self)",
 * "Renew a token (self)", "Revoke a token (self)") and, for the renewal arithmetic,
 * sdk/framework CalculateTTL and vault/expiration.go (leaseEntry.renewable).
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from './clock.js';
import { rfc3339 } from './clock.js';
import { formatGoDuration } from './duration.js';
import { badRequest } from './http.js';

/** Vault's default for both default_lease_ttl and max_lease_ttl: 768h (32 days). */
export const SYSTEM_MAX_TTL_SECONDS = 768 * 3600;

export interface TokenEntry {
  readonly id: string;
  readonly accessor: string;
  readonly policies: readonly string[];
  readonly path: string;
  readonly displayName: string;
  readonly meta: Readonly<Record<string, string>> | null;
  readonly orphan: boolean;
  readonly issueTime: Date;
  /** The TTL the token was created with; a renewal without an increment asks for this again. 0 = root. */
  readonly creationTtlSeconds: number;
  readonly explicitMaxTtlSeconds: number;
  /** The backend's max TTL (an AppRole's token_max_ttl); 0 means the system maximum. */
  readonly backendMaxTtlSeconds: number;
  readonly renewable: boolean;
  /** undefined for a token that never expires (root). */
  expireTime: Date | undefined;
  lastRenewalTime: Date | undefined;
}

export interface NewToken {
  readonly policies: readonly string[];
  readonly path: string;
  readonly displayName: string;
  readonly ttlSeconds?: number | undefined;
  readonly explicitMaxTtlSeconds?: number | undefined;
  readonly backendMaxTtlSeconds?: number | undefined;
  readonly renewable?: boolean | undefined;
  readonly meta?: Readonly<Record<string, string>> | undefined;
  readonly orphan?: boolean | undefined;
}

export interface Renewal {
  readonly leaseDurationSeconds: number;
  readonly warnings: readonly string[];
}

/** policyutil.SanitizePolicies: add "default" (never to root), lower-case, de-duplicate, sort. */
export function sanitizePolicies(policies: readonly string[]): string[] {
  const lowered = policies.map((p) => p.trim().toLowerCase()).filter((p) => p !== '');
  if (!lowered.includes('root')) lowered.push('default');
  return [...new Set(lowered)].sort();
}

/** Vault service tokens look like "hvs." + random; accessors are 24 random characters. */
function randomId(prefix: string): string {
  return prefix + randomBytes(18).toString('base64url');
}

export class TokenStore {
  readonly #tokens = new Map<string, TokenEntry>();

  constructor(private readonly clock: Clock) {}

  createRoot(): TokenEntry {
    const entry: TokenEntry = {
      id: randomId('hvs.'),
      accessor: randomId(''),
      policies: ['root'],
      path: 'auth/token/root',
      displayName: 'root',
      meta: null,
      orphan: true,
      issueTime: this.clock.now(),
      creationTtlSeconds: 0,
      explicitMaxTtlSeconds: 0,
      backendMaxTtlSeconds: 0,
      renewable: false,
      expireTime: undefined,
      lastRenewalTime: undefined,
    };
    this.#tokens.set(entry.id, entry);
    return entry;
  }

  create(spec: NewToken): TokenEntry {
    const now = this.clock.now();
    const explicitMax = spec.explicitMaxTtlSeconds ?? 0;
    const backendMax = spec.backendMaxTtlSeconds ?? 0;
    const requested =
      spec.ttlSeconds !== undefined && spec.ttlSeconds > 0 ? spec.ttlSeconds : SYSTEM_MAX_TTL_SECONDS;
    const ttl = Math.min(requested, this.#maxTtl(explicitMax, backendMax));
    const entry: TokenEntry = {
      id: randomId('hvs.'),
      accessor: randomId(''),
      policies: sanitizePolicies(spec.policies),
      path: spec.path,
      displayName: spec.displayName,
      meta: spec.meta ?? null,
      orphan: spec.orphan ?? false,
      issueTime: now,
      creationTtlSeconds: ttl,
      explicitMaxTtlSeconds: explicitMax,
      backendMaxTtlSeconds: backendMax,
      renewable: spec.renewable ?? true,
      expireTime: new Date(now.getTime() + ttl * 1000),
      lastRenewalTime: undefined,
    };
    this.#tokens.set(entry.id, entry);
    return entry;
  }

  /** An unknown or expired token is no token: Vault's token store lookup returns nil for both. */
  lookup(id: string | undefined): TokenEntry | undefined {
    if (id === undefined) return undefined;
    const entry = this.#tokens.get(id);
    if (entry === undefined) return undefined;
    if (entry.expireTime !== undefined && entry.expireTime.getTime() <= this.clock.nowMs()) {
      this.#tokens.delete(id);
      return undefined;
    }
    return entry;
  }

  revoke(id: string): void {
    this.#tokens.delete(id);
  }

  /**
   * Seconds left, 0 for a token that never expires. Rounded to the nearest second where Vault
   * truncates: the few milliseconds a request takes would otherwise turn 3600 into 3599 at random.
   */
  ttlSeconds(entry: TokenEntry): number {
    if (entry.expireTime === undefined) return 0;
    return Math.max(0, Math.round((entry.expireTime.getTime() - this.clock.nowMs()) / 1000));
  }

  /**
   * renew-self: the new TTL is the increment (or the creation TTL), capped so the token never
   * outlives issue time + max TTL; capping adds CalculateTTL's warning.
   */
  renew(entry: TokenEntry, incrementSeconds: number | undefined): Renewal {
    // expiration.go leaseEntry.renewable(): a token without a lease (root) has nothing to renew.
    if (entry.expireTime === undefined) throw badRequest('lease not found');
    if (!entry.renewable) throw badRequest('lease is not renewable');
    const now = this.clock.nowMs();
    const maxDeadline =
      entry.issueTime.getTime() +
      this.#maxTtl(entry.explicitMaxTtlSeconds, entry.backendMaxTtlSeconds) * 1000;
    const remaining = Math.round((maxDeadline - now) / 1000);
    if (remaining <= 0) throw badRequest('past the max TTL, cannot renew');
    let ttl =
      incrementSeconds !== undefined && incrementSeconds > 0 ? incrementSeconds : entry.creationTtlSeconds;
    const warnings: string[] = [];
    if (ttl > remaining) {
      warnings.push(
        `TTL of "${formatGoDuration(ttl)}" exceeded the effective max_ttl of "${formatGoDuration(remaining)}"; TTL value is capped accordingly`,
      );
      ttl = remaining;
    }
    entry.expireTime = new Date(now + ttl * 1000);
    entry.lastRenewalTime = new Date(now);
    return { leaseDurationSeconds: ttl, warnings };
  }

  /** The body of lookup-self's `data`, field for field as Vault returns it (the token id included). */
  describe(entry: TokenEntry): Record<string, unknown> {
    const described: Record<string, unknown> = {
      accessor: entry.accessor,
      creation_time: Math.floor(entry.issueTime.getTime() / 1000),
      creation_ttl: entry.creationTtlSeconds,
      display_name: entry.displayName,
      entity_id: '',
      expire_time: entry.expireTime === undefined ? null : rfc3339(entry.expireTime),
      explicit_max_ttl: entry.explicitMaxTtlSeconds,
      id: entry.id,
      issue_time: rfc3339(entry.issueTime),
      meta: entry.meta,
      num_uses: 0,
      orphan: entry.orphan,
      path: entry.path,
      policies: [...entry.policies],
      renewable: entry.renewable,
      ttl: this.ttlSeconds(entry),
      type: 'service',
    };
    if (entry.lastRenewalTime !== undefined) {
      described['last_renewal'] = rfc3339(entry.lastRenewalTime);
      described['last_renewal_time'] = Math.floor(entry.lastRenewalTime.getTime() / 1000);
    }
    return described;
  }

  /** The `auth` block of a login or renew-self answer (logical.HTTPAuth). */
  authBlock(entry: TokenEntry, leaseDurationSeconds: number): Record<string, unknown> {
    return {
      client_token: entry.id,
      accessor: entry.accessor,
      policies: [...entry.policies],
      token_policies: [...entry.policies],
      metadata: entry.meta,
      lease_duration: leaseDurationSeconds,
      renewable: entry.renewable,
      entity_id: '',
      token_type: 'service',
      orphan: entry.orphan,
      mfa_requirement: null,
      num_uses: 0,
    };
  }

  #maxTtl(explicitMax: number, backendMax: number): number {
    const backend = backendMax > 0 ? Math.min(backendMax, SYSTEM_MAX_TTL_SECONDS) : SYSTEM_MAX_TTL_SECONDS;
    return explicitMax > 0 ? Math.min(explicitMax, backend) : backend;
  }
}
