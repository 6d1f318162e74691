/**
 * The KV version 2 engine's state and rules, without HTTP. Ports hashicorp/vault-plugin-secrets-kv:
 * path_data.go (read, write with check-and-set, soft delete of the latest version, AddVersion's
 * max_versions window), path_delete.go (delete/undelete versions), path_destroy.go, path_metadata.go
 * and path_config.go. Times come from the server clock; `delete_version_after` is stored and shown
 * but never schedules a deletion.
 */
import type { Clock } from './clock.js';
import { rfc3339 } from './clock.js';
import { badRequest } from './http.js';

/** vault-plugin-secrets-kv defaultMaxVersions. */
export const DEFAULT_MAX_VERSIONS = 10;

interface StoredVersion {
  readonly createdTime: Date;
  deletionTime: Date | undefined;
  destroyed: boolean;
  /** JSON text, so a reader can never alias what a writer stored; undefined once destroyed. */
  json: string | undefined;
}

interface KeyMetadata {
  currentVersion: number;
  oldestVersion: number;
  createdTime: Date | undefined;
  updatedTime: Date | undefined;
  maxVersions: number;
  casRequired: boolean;
  deleteVersionAfterSeconds: number;
  customMetadata: Record<string, string> | null;
  readonly versions: Map<number, StoredVersion>;
}

export interface EngineConfig {
  maxVersions: number;
  casRequired: boolean;
  deleteVersionAfterSeconds: number;
}

/** The `metadata` block of a data read and the body of a data write. */
export interface VersionView {
  readonly created_time: string;
  readonly custom_metadata: Record<string, string> | null;
  readonly deletion_time: string;
  readonly destroyed: boolean;
  readonly version: number;
}

export type KvRead =
  | { readonly kind: 'missing' }
  | { readonly kind: 'gone'; readonly metadata: VersionView }
  | { readonly kind: 'found'; readonly data: Record<string, unknown>; readonly metadata: VersionView };

export interface MetadataUpdate {
  readonly maxVersions?: number | undefined;
  readonly casRequired?: boolean | undefined;
  readonly deleteVersionAfterSeconds?: number | undefined;
  readonly customMetadata?: Record<string, string> | undefined;
}

export class Kv2Engine {
  readonly #keys = new Map<string, KeyMetadata>();
  readonly config: EngineConfig = { maxVersions: 0, casRequired: false, deleteVersionAfterSeconds: 0 };

  constructor(private readonly clock: Clock) {}

  /** The existence check that makes a write `create` or `update` for the ACL: key metadata exists. */
  exists(key: string): boolean {
    return this.#keys.has(key);
  }

  read(key: string, requestedVersion: number): KvRead {
    const meta = this.#keys.get(key);
    if (meta === undefined) return { kind: 'missing' };
    const version = requestedVersion > 0 ? requestedVersion : meta.currentVersion;
    const stored = meta.versions.get(version);
    if (stored === undefined) return { kind: 'missing' };
    const metadata = this.#view(meta, version, stored);
    if (this.#isDeleted(stored) || stored.destroyed || stored.json === undefined)
      return { kind: 'gone', metadata };
    return { kind: 'found', data: JSON.parse(stored.json) as Record<string, unknown>, metadata };
  }

  /** cas: undefined when the request carried no options.cas. */
  write(key: string, data: Record<string, unknown>, cas: number | undefined): VersionView {
    const meta = this.#keys.get(key) ?? this.#newMetadata(undefined);
    // path_data.go validateCheckAndSetOption
    if (cas !== undefined) {
      if (cas !== meta.currentVersion)
        throw badRequest('check-and-set parameter did not match the current version');
    } else if (this.config.casRequired || meta.casRequired) {
      throw badRequest('check-and-set parameter required for this call');
    }
    const now = this.clock.now();
    const stored: StoredVersion = {
      createdTime: now,
      deletionTime: undefined,
      destroyed: false,
      json: JSON.stringify(data),
    };
    meta.currentVersion++;
    meta.versions.set(meta.currentVersion, stored);
    meta.updatedTime = now;
    meta.createdTime ??= now;
    this.#trim(meta);
    this.#keys.set(key, meta);
    return this.#view(meta, meta.currentVersion, stored);
  }

  /** KeyMetadata.AddVersion's window: keep max(key, engine) versions, or 10 when both are 0. */
  #trim(meta: KeyMetadata): void {
    const max = Math.max(meta.maxVersions, this.config.maxVersions) || DEFAULT_MAX_VERSIONS;
    if (meta.currentVersion - meta.oldestVersion < max) return;
    const lastToDrop = meta.currentVersion - max;
    for (let v = meta.oldestVersion; v <= lastToDrop; v++) meta.versions.delete(v);
    meta.oldestVersion = lastToDrop + 1;
  }

  /** DELETE data/<path>: soft-deletes the latest version unless it is already deleted or destroyed. */
  deleteLatest(key: string): void {
    const meta = this.#keys.get(key);
    const latest = meta?.versions.get(meta.currentVersion);
    if (latest === undefined || latest.destroyed || this.#isDeleted(latest)) return;
    latest.deletionTime = this.clock.now();
  }

  deleteVersions(key: string, versions: readonly number[]): void {
    const now = this.clock.now();
    for (const stored of this.#existing(key, versions)) {
      if (!stored.destroyed && !this.#isDeleted(stored)) stored.deletionTime = now;
    }
  }

  undeleteVersions(key: string, versions: readonly number[]): void {
    for (const stored of this.#existing(key, versions)) {
      if (!stored.destroyed) stored.deletionTime = undefined;
    }
  }

  destroyVersions(key: string, versions: readonly number[]): void {
    for (const stored of this.#existing(key, versions)) {
      stored.destroyed = true;
      stored.json = undefined;
    }
  }

  /** The body of a metadata read (path_metadata.go pathMetadataRead), or undefined. */
  readMetadata(key: string): Record<string, unknown> | undefined {
    const meta = this.#keys.get(key);
    if (meta === undefined) return undefined;
    const versions: Record<string, unknown> = {};
    for (const [n, v] of meta.versions) {
      versions[String(n)] = {
        created_time: rfc3339(v.createdTime),
        deletion_time: v.deletionTime === undefined ? '' : rfc3339(v.deletionTime),
        destroyed: v.destroyed,
      };
    }
    return {
      cas_required: meta.casRequired,
      created_time: meta.createdTime === undefined ? '' : rfc3339(meta.createdTime),
      current_version: meta.currentVersion,
      custom_metadata: meta.customMetadata === null ? null : { ...meta.customMetadata },
      delete_version_after: `${meta.deleteVersionAfterSeconds}s`,
      max_versions: meta.maxVersions,
      oldest_version: meta.oldestVersion,
      updated_time: meta.updatedTime === undefined ? '' : rfc3339(meta.updatedTime),
      versions,
    };
  }

  /** pathMetadataWrite: creates the key's metadata if needed; returns Vault's warnings. */
  writeMetadata(key: string, update: MetadataUpdate): string[] {
    const fields = [
      update.maxVersions,
      update.casRequired,
      update.deleteVersionAfterSeconds,
      update.customMetadata,
    ];
    if (fields.every((f) => f === undefined)) return [];
    const warnings: string[] = [];
    if (update.casRequired === false && this.config.casRequired) {
      warnings.push(
        '"cas_required" set to false, but is mandated by backend config. This value will be ignored.',
      );
    }
    const meta = this.#keys.get(key) ?? this.#newMetadata(this.clock.now());
    if (update.maxVersions !== undefined) meta.maxVersions = update.maxVersions;
    if (update.casRequired !== undefined) meta.casRequired = update.casRequired;
    if (update.deleteVersionAfterSeconds !== undefined)
      meta.deleteVersionAfterSeconds = update.deleteVersionAfterSeconds;
    if (update.customMetadata !== undefined) meta.customMetadata = { ...update.customMetadata };
    this.#keys.set(key, meta);
    return warnings;
  }

  /** Removes the key, every version and its metadata. */
  deleteMetadata(key: string): void {
    this.#keys.delete(key);
  }

  /** Immediate children of a folder ("" is the mount's root), folders with a trailing "/", sorted. */
  list(folder: string): string[] {
    const children = new Set<string>();
    for (const key of this.#keys.keys()) {
      if (!key.startsWith(folder)) continue;
      const rest = key.slice(folder.length);
      if (rest === '') continue;
      const slash = rest.indexOf('/');
      children.add(slash < 0 ? rest : rest.slice(0, slash + 1));
    }
    return [...children].sort();
  }

  #newMetadata(createdTime: Date | undefined): KeyMetadata {
    return {
      currentVersion: 0,
      oldestVersion: 0,
      createdTime,
      updatedTime: createdTime,
      maxVersions: 0,
      casRequired: false,
      deleteVersionAfterSeconds: 0,
      customMetadata: null,
      versions: new Map(),
    };
  }

  *#existing(key: string, versions: readonly number[]): Iterable<StoredVersion> {
    const meta = this.#keys.get(key);
    if (meta === undefined) return;
    for (const n of versions) {
      const stored = meta.versions.get(n);
      if (stored !== undefined) yield stored;
    }
  }

  /** Vault compares deletion_time.Before(now); ours is inclusive so a delete is visible at once. */
  #isDeleted(stored: StoredVersion): boolean {
    return stored.deletionTime !== undefined && stored.deletionTime.getTime() <= this.clock.nowMs();
  }

  #view(meta: KeyMetadata, version: number, stored: StoredVersion): VersionView {
    return {
      created_time: rfc3339(stored.createdTime),
      custom_metadata: meta.customMetadata === null ? null : { ...meta.customMetadata },
      deletion_time: stored.deletionTime === undefined ? '' : rfc3339(stored.deletionTime),
      destroyed: stored.destroyed,
      version,
    };
  }
}
