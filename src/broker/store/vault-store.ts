/**
 * VaultStore: the token store in Vault KV v2 (docs/decisions/0003-token-store-layout.md).
 *
 * One secret per PF at `<mount>/data/<prefix>/<host-id>/pf/<pci-address>`; each KV version is one
 * state of the record, and every write is `cas`-checked against the version the writer read, so two
 * brokers (or a broker and the CLI) never both win. The record's revision is the KV version. Tokens
 * live only in the secret's data: never in metadata, custom_metadata or key names (LIST answers are
 * not filtered by policy).
 */
import { VfbError, isVfbError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { isPciAddress, type PciAddress } from '../../pci/address.js';
import { RecordTokenStore, staleRevision, type RecordBackend, type StoredVersion } from './record-store.js';
import { RECORD_SCHEMA, type TokenRecord } from './token-record.js';
import type { VaultAuthOptions } from './vault-auth.js';
import { VaultClient, type VaultClientDeps } from './vault-client.js';
import { malformedReply, replyError } from './vault-errors.js';

/** broker.yaml's `store` (type vault) plus the host id, as the config loader resolves them. */
export interface VaultStoreOptions {
  readonly address: string;
  readonly caFile?: string;
  readonly auth: VaultAuthOptions;
  readonly mount: string;
  readonly prefix: string;
  readonly requestTimeoutMs: number;
  readonly hostId: string;
}

const PATH = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;
const HOST_ID = /^[a-z0-9][a-z0-9.-]{0,62}$/;

function checkPathPart(name: string, value: string, pattern: RegExp): void {
  if (!pattern.test(value) || value.split('/').some((s) => s === '.' || s === '..')) {
    throw new VfbError(
      'CONFIG_INVALID',
      `${name} ${JSON.stringify(value.slice(0, 80))} cannot be used in a Vault path`,
      {
        hint: 'use letters, digits, ".", "_" and "-", with "/" between path segments',
      },
    );
  }
}

class KvBackend implements RecordBackend {
  readonly description: string;
  readonly #client: VaultClient;
  readonly #logger: Logger;
  readonly #mount: string;
  /** `<prefix>/<host-id>/pf`, the folder of this host's PF secrets inside the mount. */
  readonly #folder: string;

  constructor(client: VaultClient, options: VaultStoreOptions, logger: Logger) {
    this.#client = client;
    this.#logger = logger;
    this.#mount = options.mount;
    this.#folder = `${options.prefix}/${options.hostId}/pf`;
    this.description = `${client.subject}, ${this.#mount}/data/${this.#folder}`;
  }

  where(pf: PciAddress, revision?: number): string {
    return `${this.#dataPath(pf)}${revision === undefined ? '' : ` version ${revision}`}`;
  }

  /** `vault kv get -mount=<mount> <prefix>/<host>/pf/<pf>` */
  async get(pf: PciAddress): Promise<StoredVersion> {
    const op = `read ${this.#dataPath(pf)}`;
    const reply = await this.#client.call('GET', this.#dataPath(pf), op);
    const body = reply.body as {
      data?: { data?: unknown; metadata?: { version?: unknown } | null } | null;
    } | null;
    const version = body?.data?.metadata?.version;
    if (reply.status === 404) {
      // A 404 that still carries metadata: the latest version was deleted or destroyed by hand.
      if (typeof version !== 'number') return { kind: 'absent', version: 0 };
      return {
        kind: 'unreadable',
        version,
        why: 'its latest version is deleted in Vault (`vault kv undelete` restores it)',
      };
    }
    const data = body?.data?.data;
    if (
      typeof version !== 'number' ||
      !Number.isInteger(version) ||
      typeof data !== 'object' ||
      data === null
    ) {
      throw malformedReply(this.#client.subject, op);
    }
    if ((data as { removed?: unknown }).removed === true) return { kind: 'absent', version };
    return { kind: 'present', version, data };
  }

  /** `vault kv put -mount=<mount> -cas=<expected> <prefix>/<host>/pf/<pf> @record.json` */
  put(pf: PciAddress, data: TokenRecord, expected: number): Promise<number> {
    return this.#write(pf, data, expected);
  }

  /**
   * A tombstone version first, with cas, so a writer that read an older version fails; then
   * `vault kv metadata delete`, which drops every version and the tokens in them.
   */
  async remove(pf: PciAddress, expected: number): Promise<void> {
    await this.#write(pf, { schema: RECORD_SCHEMA, pf, removed: true }, expected);
    const path = `${this.#mount}/metadata/${this.#folder}/${pf}`;
    await this.#client.call('DELETE', path, `delete ${path}`);
  }

  /** `vault kv list -mount=<mount> <prefix>/<host>/pf` */
  async keys(): Promise<PciAddress[]> {
    const path = `${this.#mount}/metadata/${this.#folder}`;
    const op = `list ${path}`;
    // The trailing slash is what `vault kv list` sends, and what policies on `…/pf/*` match.
    const reply = await this.#client.call('GET', `${path}/?list=true`, op);
    if (reply.status === 404) return [];
    const keys = (reply.body as { data?: { keys?: unknown } } | null)?.data?.keys;
    if (!Array.isArray(keys)) throw malformedReply(this.#client.subject, op);
    const pfs = keys.filter((k): k is PciAddress => isPciAddress(k));
    if (pfs.length !== keys.length) {
      this.#logger.warn(
        { path, ignored: keys.length - pfs.length },
        'ignored Vault keys that are not PCI addresses',
      );
    }
    return pfs;
  }

  async probe(): Promise<void> {
    await this.keys();
  }

  close(): Promise<void> {
    this.#client.close();
    return Promise.resolve();
  }

  async #write(pf: PciAddress, data: Record<string, unknown>, expected: number): Promise<number> {
    const path = this.#dataPath(pf);
    const op = `write ${path}`;
    let reply;
    try {
      reply = await this.#client.call('POST', path, op, { options: { cas: expected }, data });
    } catch (err) {
      if (isVfbError(err, 'CONFLICT')) throw staleRevision(pf, path, expected);
      throw err;
    }
    // A 404 on a write: no KV engine at the mount.
    if (reply.status === 404) throw replyError(this.#client.subject, op, reply);
    const version = (reply.body as { data?: { version?: unknown } } | null)?.data?.version;
    if (typeof version !== 'number' || !Number.isInteger(version)) {
      throw malformedReply(this.#client.subject, op);
    }
    return version;
  }

  #dataPath(pf: PciAddress): string {
    return `${this.#mount}/data/${this.#folder}/${pf}`;
  }
}

export class VaultStore extends RecordTokenStore {
  /** Checks the paths, connects and authenticates; the store is ready when this resolves. */
  static async open(options: VaultStoreOptions, deps: VaultClientDeps): Promise<VaultStore> {
    checkPathPart('store.mount', options.mount, PATH);
    checkPathPart('store.prefix', options.prefix, PATH);
    checkPathPart('hostId', options.hostId, HOST_ID);
    if ('approle' in options.auth && options.auth.approle.mount !== undefined) {
      checkPathPart('store.auth.approle.mount', options.auth.approle.mount, PATH);
    }
    const client = await VaultClient.connect(options, deps);
    return new VaultStore(new KvBackend(client, options, deps.logger), deps.logger);
  }
}
