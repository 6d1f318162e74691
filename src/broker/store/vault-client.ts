/**
 * The narrow Vault wrapper the store uses: authenticated requests with a timeout, typed errors, and a
 * token kept alive behind them (vault-auth.ts). Everything vfbroker asks of Vault goes through
 * `call()`; the shell equivalent of each use is noted where it is made (vault-store.ts).
 */
import { readFile } from 'node:fs/promises';
import { VfbError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { systemClock, type Clock } from './clock.js';
import { fsError } from '../../private-files.js';
import { VaultSession, type VaultAuthOptions } from './vault-auth.js';
import { replyError, type VaultReply } from './vault-errors.js';
import { VaultHttp, type VaultMethod } from './vault-http.js';

export interface VaultClientOptions {
  readonly address: string;
  readonly caFile?: string;
  readonly auth: VaultAuthOptions;
  readonly requestTimeoutMs: number;
}

export interface VaultClientDeps {
  readonly logger: Logger;
  /** Timers for token renewal; tests pass a manual clock. */
  readonly clock?: Clock;
}

const MAX_CA_BYTES = 1024 * 1024;

export class VaultClient {
  readonly #http: VaultHttp;
  readonly #session: VaultSession;

  private constructor(http: VaultHttp, session: VaultSession) {
    this.#http = http;
    this.#session = session;
  }

  /** Connects and authenticates (`vault token lookup`, or `vault write auth/approle/login …`). */
  static async connect(options: VaultClientOptions, deps: VaultClientDeps): Promise<VaultClient> {
    const ca = options.caFile === undefined ? undefined : await readCa(options.caFile);
    const http = new VaultHttp({
      address: options.address,
      timeoutMs: options.requestTimeoutMs,
      ...(ca === undefined ? {} : { ca }),
    });
    const session = new VaultSession(http, options.auth, deps.clock ?? systemClock, deps.logger);
    try {
      await session.start();
    } catch (err) {
      session.close();
      http.close();
      throw err;
    }
    return new VaultClient(http, session);
  }

  /** "Vault at <origin>", for messages. */
  get subject(): string {
    return this.#http.subject;
  }

  /**
   * An authenticated request to /v1/<path>. Resolves with 2xx and 404 replies (a 404 body can say
   * more, e.g. that the latest version is deleted); any other status rejects with its typed error.
   * A 403 is retried once if the token turns out to have died and a new one was obtained.
   */
  async call(
    method: VaultMethod,
    path: string,
    op: string,
    body?: Record<string, unknown>,
  ): Promise<VaultReply> {
    for (let attempt = 1; ; attempt++) {
      const token = this.#session.token;
      const reply = await this.#http.send(method, path, op, {
        token,
        ...(body === undefined ? {} : { body }),
      });
      if (reply.status === 403 && attempt === 1 && (await this.#session.recover(token))) continue;
      if ((reply.status >= 200 && reply.status < 300) || reply.status === 404) return reply;
      throw replyError(this.#http.subject, op, reply);
    }
  }

  close(): void {
    this.#session.close();
    this.#http.close();
  }
}

async function readCa(path: string): Promise<string> {
  let pem: Buffer;
  try {
    pem = await readFile(path);
  } catch (err) {
    throw fsError(err, 'Vault CA file', path);
  }
  if (pem.length > MAX_CA_BYTES || !pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new VfbError('CONFIG_INVALID', `Vault CA file ${path} holds no PEM certificate`, {
      hint: 'point store.caFile at the PEM file of the CA that signed the Vault server certificate',
    });
  }
  return pem.toString('utf8');
}
