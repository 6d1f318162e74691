/** What a backend offers the request pipeline for one path. */
import type { ApiRequest, ApiResponse, Operation } from './http.js';
import type { TokenEntry } from './tokens.js';

export interface Route {
  /** The mount's type, reported as `mount_type` (kv, token, approle, system). */
  readonly mountType: string;
  /** Login paths: served without a token and without an ACL check. */
  readonly unauthenticated?: boolean;
  /**
   * Vault's ExistenceCheck: for a write, whether the target exists, which makes the ACL check
   * `update` rather than `create`. Without one, every write is `update`.
   */
  readonly exists?: () => boolean;
  /** `operation` is the one the ACL allowed (create or update for writes). */
  handle(req: ApiRequest, operation: Operation, caller: TokenEntry | undefined): ApiResponse;
}
