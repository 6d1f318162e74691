/**
 * The broker's Vault token: where it comes from, keeping it alive, and getting a new one.
 *
 * - Token file: read at start and again whenever the token is found dead (an agent such as
 *   vault-agent may have written a new one).
 * - AppRole: role_id and secret_id read from private files, `POST auth/approle/login`.
 *
 * At start `lookup-self` proves the token works and tells its TTL. A renewable token is renewed at
 * 2/3 of its TTL; when renewal fails for lack of an answer it is retried with exponential backoff
 * (node-vault's helper gives up after one failure), and when Vault refuses it, the token is not
 * renewable, or its max TTL caps it, the session logs in again. A request that gets a 403 asks
 * recover(): a live token means the policy said no; a dead one is replaced and the request retried.
 */
import { VfbError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Clock } from './clock.js';
import { readPrivateFile } from '../../private-files.js';
import { malformedReply, replyError, vaultErrorStrings } from './vault-errors.js';
import type { VaultHttp } from './vault-http.js';

export type VaultAuthOptions =
  | { readonly tokenFile: string }
  | {
      readonly approle: {
        readonly roleIdFile: string;
        readonly secretIdFile: string;
        /** Where the AppRole auth method is enabled; "approle" when absent. */
        readonly mount?: string;
      };
    };

/** Renew when this fraction of the TTL has passed. */
const RENEW_AT = 2 / 3;
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 60_000;
/** Never schedule sooner than this, so a token near its end cannot make the session spin. */
const MIN_DELAY_MS = 1_000;
/** setTimeout's limit (about 24.8 days); a longer TTL is simply renewed early. */
const MAX_DELAY_MS = 2 ** 31 - 1;
const MAX_CREDENTIAL_BYTES = 4096;

interface Lease {
  readonly token: string;
  /** Seconds; 0 means the token never expires (root, or a token made without a TTL). */
  readonly ttl: number;
  readonly renewable: boolean;
}

type Step = 'renew' | 'login';

export class VaultSession {
  readonly #http: VaultHttp;
  readonly #auth: VaultAuthOptions;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #token = '';
  /** The TTL the token was granted; a renewal that returns less has hit the max TTL. */
  #grantedTtl = 0;
  #expiresAt = Infinity;
  #cancelTimer = (): void => undefined;
  #login: Promise<void> | null = null;
  #closed = false;

  constructor(http: VaultHttp, auth: VaultAuthOptions, clock: Clock, logger: Logger) {
    this.#http = http;
    this.#auth = auth;
    this.#clock = clock;
    this.#logger = logger;
  }

  /** Obtains a working token (AppRole login, or the token file proven by lookup-self), or throws why not. */
  async start(): Promise<void> {
    await this.#obtain();
  }

  /** The current token, for the X-Vault-Token header. Never log it. */
  get token(): string {
    return this.#token;
  }

  /**
   * After a 403 with `token`: true when a new token was obtained (retry the request), false when the
   * token is alive and the policy refused. Throws when the token is dead and cannot be replaced.
   */
  async recover(token: string): Promise<boolean> {
    if (token !== this.#token) return true;
    if (await this.#alive(token)) return false;
    await this.#loginOnce();
    return true;
  }

  close(): void {
    this.#closed = true;
    this.#cancelTimer();
  }

  /** Logs in (or re-reads the token file), proves the token and schedules its renewal. Single-flight. */
  #loginOnce(): Promise<void> {
    this.#login ??= this.#obtain().finally(() => {
      this.#login = null;
    });
    return this.#login;
  }

  async #obtain(): Promise<void> {
    if ('approle' in this.#auth) {
      const { roleIdFile, secretIdFile, mount = 'approle' } = this.#auth.approle;
      const roleId = await readCredential(roleIdFile, 'AppRole role_id file');
      const secretId = await readCredential(secretIdFile, 'AppRole secret_id file');
      const reply = await this.#http.send('POST', `auth/${mount}/login`, 'log in with AppRole', {
        body: { role_id: roleId, secret_id: secretId },
      });
      if (reply.status === 400) {
        // Vault answers a wrong role_id or secret_id with 400 "invalid role or secret ID": a refusal.
        const why = vaultErrorStrings(reply.body).join('; ') || 'refused';
        throw new VfbError('DENIED', `${this.#http.subject}: cannot log in with AppRole: ${why} (HTTP 400)`, {
          details: { status: 400 },
          hint: `check the role_id in ${roleIdFile} and the secret_id in ${secretIdFile} (it may have expired)`,
        });
      }
      this.#adopt(this.#authBlock(reply, 'log in with AppRole'), 'login');
      return;
    }
    const tokenFile = this.#auth.tokenFile;
    const token = await readCredential(tokenFile, 'Vault token file');
    const reply = await this.#http.send('GET', 'auth/token/lookup-self', 'look up its own token', { token });
    if (reply.status === 403) {
      throw new VfbError(
        'DENIED',
        `${this.#http.subject}: the Vault token in ${tokenFile} is expired or revoked`,
        {
          details: { status: 403 },
          hint: 'write a valid token to the token file (vault-agent can keep it fresh)',
        },
      );
    }
    if (reply.status !== 200) throw replyError(this.#http.subject, 'look up its own token', reply);
    const data = (reply.body as { data?: { ttl?: unknown; renewable?: unknown } } | null)?.data;
    if (typeof data?.ttl !== 'number') throw malformedReply(this.#http.subject, 'look up its own token');
    this.#adopt({ token, ttl: data.ttl, renewable: data.renewable === true }, 'login');
  }

  async #renew(): Promise<void> {
    const op = 'renew its token';
    const reply = await this.#http.send('POST', 'auth/token/renew-self', op, {
      token: this.#token,
      body: {},
    });
    this.#adopt(this.#authBlock(reply, op), 'renew');
  }

  /** lookup-self answers 403 for a token that is expired, revoked or unknown. */
  async #alive(token: string): Promise<boolean> {
    const op = 'look up its own token';
    const reply = await this.#http.send('GET', 'auth/token/lookup-self', op, { token });
    if (reply.status === 200) return true;
    if (reply.status === 403) return false;
    throw replyError(this.#http.subject, op, reply);
  }

  #authBlock(reply: { status: number; body: unknown }, op: string): Lease {
    if (reply.status !== 200) throw replyError(this.#http.subject, op, reply);
    const auth = (
      reply.body as {
        auth?: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown };
      } | null
    )?.auth;
    if (
      typeof auth?.client_token !== 'string' ||
      auth.client_token === '' ||
      typeof auth.lease_duration !== 'number'
    ) {
      throw malformedReply(this.#http.subject, op);
    }
    return { token: auth.client_token, ttl: auth.lease_duration, renewable: auth.renewable === true };
  }

  #adopt(lease: Lease, how: Step): void {
    const capped = how === 'renew' && lease.ttl < this.#grantedTtl;
    if (how === 'login') this.#grantedTtl = lease.ttl;
    this.#token = lease.token;
    this.#expiresAt = lease.ttl === 0 ? Infinity : this.#clock.now() + lease.ttl * 1000;
    this.#logger.info({ ttlSeconds: lease.ttl, renewable: lease.renewable, how }, 'Vault token ready');
    if (lease.ttl === 0) {
      this.#cancelTimer();
      return;
    }
    const next: Step = lease.renewable && !capped ? 'renew' : 'login';
    this.#schedule(next, lease.ttl * 1000 * RENEW_AT, 0);
  }

  #schedule(step: Step, delayMs: number, attempt: number): void {
    this.#cancelTimer();
    if (this.#closed) return;
    const delay = Math.ceil(Math.min(MAX_DELAY_MS, Math.max(MIN_DELAY_MS, delayMs)));
    this.#cancelTimer = this.#clock.schedule(() => void this.#run(step, attempt), delay);
  }

  async #run(step: Step, attempt: number): Promise<void> {
    try {
      if (step === 'renew') await this.#renew();
      else await this.#loginOnce();
    } catch (err) {
      if (this.#closed) return;
      if (step === 'renew' && isRefusal(err)) {
        this.#logger.warn({ err }, 'Vault refused to renew the token; logging in again');
        this.#schedule('login', 0, 0);
        return;
      }
      const delay = Math.min(RETRY_FIRST_MS * 2 ** attempt, RETRY_MAX_MS);
      // Renewing a token that will be dead before the retry is pointless: log in instead.
      const nextStep: Step =
        step === 'renew' && this.#clock.now() + delay >= this.#expiresAt ? 'login' : step;
      this.#logger.warn({ err, retryInMs: delay, step: nextStep }, 'Vault token upkeep failed; retrying');
      this.#schedule(nextStep, delay, attempt + 1);
    }
  }
}

/** Vault answered and said no (a 4xx other than 429): retrying the same request will not help. */
function isRefusal(err: unknown): boolean {
  const status = err instanceof VfbError ? err.details['status'] : undefined;
  return typeof status === 'number' && status >= 400 && status < 500 && status !== 429;
}

/** One line of printable ASCII from a private file: a Vault token, role_id or secret_id. */
async function readCredential(path: string, what: string): Promise<string> {
  const value = (await readPrivateFile(path, what, MAX_CREDENTIAL_BYTES)).toString('utf8').trim();
  if (!/^[\x21-\x7e]+$/.test(value)) {
    throw new VfbError(
      'CONFIG_INVALID',
      `${what} ${path} must hold exactly one line with the value, and nothing else`,
      {
        hint: 'write the value alone into the file (no quotes, no key name)',
      },
    );
  }
  return value;
}
