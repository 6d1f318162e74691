/**
 * Vault failures as VfbErrors. node-vault's errors, and the axios errors under them, carry the request
 * headers — X-Vault-Token included — and sometimes the request body (an AppRole secret_id). None of
 * them is ever logged, rethrown or kept as `cause`: only the HTTP status, Vault's own `errors`
 * strings (cleaned) and a transport error code survive into the VfbError.
 */
import { VfbError } from '../../errors.js';

/** An HTTP answer from Vault, whatever its status. The body is never logged: it may hold a token. */
export interface VaultReply {
  readonly status: number;
  readonly body: unknown;
}

// Vault's text for a KV v2 CAS mismatch (vault-plugin-secrets-kv path_data.go).
const CAS_MISMATCH = 'check-and-set parameter did not match';

// Shapes of secrets Vault could echo back: UUIDs (VF tokens, role and secret ids) and Vault tokens.
const SECRET_SHAPES = [
  /[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}/gi,
  /\bhv[sbr]\.[A-Za-z0-9_-]+/g,
  /\b[sbr]\.[A-Za-z0-9]{24}\b/g,
];

/** Vault's `errors` strings: at most three, one line and 160 characters each, anything token-shaped cut out. */
export function vaultErrorStrings(body: unknown): string[] {
  const errors = (body as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors
    .filter((e): e is string => typeof e === 'string')
    .map((e) => SECRET_SHAPES.reduce((s, re) => s.replace(re, '[redacted]'), e))
    .map((e) =>
      e
        .replace(/\s+/g, ' ')
        .replace(/^1 error occurred: \* /, '')
        .trim()
        .slice(0, 160),
    )
    .filter((e) => e !== '')
    .slice(0, 3);
}

/** The error for a non-2xx reply. `subject` is "Vault at <origin>", `op` says what was attempted. */
export function replyError(subject: string, op: string, reply: VaultReply): VfbError {
  const errors = vaultErrorStrings(reply.body);
  const text = errors.join('; ');
  const status = reply.status;
  const details = { status, ...(text ? { vaultErrors: text } : {}) };
  const say = (why: string) => `${subject}: cannot ${op}: ${why} (HTTP ${status})`;
  if (status === 400 && text.includes(CAS_MISMATCH)) {
    return new VfbError('CONFLICT', say('check-and-set did not match the current version'), { details });
  }
  if (status === 403) {
    return new VfbError('DENIED', say(text || 'permission denied'), {
      details,
      hint: "grant vfbroker's Vault policy this path (docs/decisions/0003-token-store-layout.md), or check its token",
    });
  }
  if (status === 404) return new VfbError('NOT_FOUND', say(text || 'not found'), { details });
  if (status === 503 && /sealed/i.test(text))
    return new VfbError('SEALED', say('Vault is sealed'), { details });
  // A 4xx other than the above means Vault did not understand the request: usually a wrong mount.
  const misconfigured = status < 500 && status !== 429;
  return new VfbError('UNAVAILABLE', say(text || 'no error text'), {
    details,
    ...(misconfigured ? { hint: 'check that store.mount names a KV v2 secrets engine' } : {}),
  });
}

/** The error for a request that got no HTTP answer: connection refused or reset, TLS refused, or timed out. */
export function transportError(subject: string, op: string, err: unknown, timeoutMs: number): VfbError {
  const raw = (err as { code?: unknown } | null)?.code;
  const code = typeof raw === 'string' && /^[A-Z0-9_]{2,40}$/.test(raw) ? raw : 'EUNKNOWN';
  const details = { errno: code };
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
    return new VfbError('TIMEOUT', `${subject}: cannot ${op}: no answer within ${timeoutMs} ms`, { details });
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code)) {
    return new VfbError(
      'UNAVAILABLE',
      `${subject}: cannot ${op}: its TLS certificate is not trusted (${code})`,
      {
        details,
        hint: 'set store.caFile to the CA that signed the Vault server certificate',
      },
    );
  }
  if (code === 'ERR_BAD_RESPONSE') {
    // axios' code for an answer whose body broke off (the connection closed before Content-Length).
    return new VfbError('UNAVAILABLE', `${subject}: cannot ${op}: the answer was cut off (${code})`, {
      details,
    });
  }
  return new VfbError('UNAVAILABLE', `${subject}: cannot ${op}: connection failed (${code})`, { details });
}

/** A 2xx reply whose body is not what Vault's API documents (truncated, proxied, not Vault at all). */
export function malformedReply(subject: string, op: string): VfbError {
  return new VfbError(
    'UNAVAILABLE',
    `${subject}: cannot ${op}: the reply is not a well-formed Vault answer`,
    {
      hint: 'check that store.address points at Vault itself, not at a proxy or another service',
    },
  );
}
