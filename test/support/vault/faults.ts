/**
 * Injected failures, matched against each request before the server handles it. A fault with
 * `times` hits that many matching requests and is then gone; without, it stays until cleared.
 * When several match, the one added first applies.
 */

export interface VaultFault {
  /** Default: every request. `pathPrefix` is compared with the API path, with or without "/v1/". */
  readonly match?: { method?: string; pathPrefix?: string };
  /** How many matching requests it hits (default: all until cleared). */
  readonly times?: number;
  readonly kind: 'latency' | 'drop' | 'status' | 'truncate';
  /** kind latency: delay before answering normally. */
  readonly latencyMs?: number;
  /** kind status: answer {"errors":["..."]} with this status (e.g. 500). */
  readonly status?: number;
}

interface ActiveFault {
  readonly fault: VaultFault;
  readonly method: string | undefined;
  readonly pathPrefix: string;
  remaining: number;
}

/** The error text of an injected status: Vault's own wording where it has one. */
export function faultMessage(status: number): string {
  switch (status) {
    case 500:
      return 'internal error';
    case 503:
      return 'Vault is sealed';
    case 429:
      return 'rate limit quota exceeded';
    default:
      return `injected HTTP ${status}`;
  }
}

export class FaultInjector {
  #faults: ActiveFault[] = [];

  add(fault: VaultFault): void {
    if (fault.kind === 'latency' && !(typeof fault.latencyMs === 'number' && fault.latencyMs >= 0)) {
      throw new TypeError('addFault: kind "latency" needs latencyMs >= 0');
    }
    if (
      fault.kind === 'status' &&
      !(Number.isInteger(fault.status) && (fault.status ?? 0) >= 100 && (fault.status ?? 0) <= 599)
    ) {
      throw new TypeError('addFault: kind "status" needs an HTTP status between 100 and 599');
    }
    if (fault.times !== undefined && !(Number.isInteger(fault.times) && fault.times > 0)) {
      throw new TypeError('addFault: times must be a positive integer');
    }
    this.#faults.push({
      fault,
      method: fault.match?.method?.toUpperCase(),
      pathPrefix: (fault.match?.pathPrefix ?? '').replace(/^\/?(v1\/)?/, ''),
      remaining: fault.times ?? Number.POSITIVE_INFINITY,
    });
  }

  clear(): void {
    this.#faults = [];
  }

  /** The fault for this request, if any, counting it as one hit. apiPath is the path after /v1/. */
  take(method: string, apiPath: string): VaultFault | undefined {
    const hit = this.#faults.find(
      (f) =>
        (f.method === undefined || f.method === method.toUpperCase()) && apiPath.startsWith(f.pathPrefix),
    );
    if (hit === undefined) return undefined;
    hit.remaining--;
    if (hit.remaining <= 0) this.#faults = this.#faults.filter((f) => f !== hit);
    return hit.fault;
  }
}
