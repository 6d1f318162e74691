/**
 * One HTTP call to a Vault API (the test server or a real Vault) with plain fetch, for tests that
 * check what goes over the wire. Not a client: no retries, no token handling beyond the header.
 */
export interface VaultCallOptions {
  readonly token?: string;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface VaultCallResult {
  readonly status: number;
  /** Parsed JSON, or undefined for an empty body. */
  readonly json: unknown;
  readonly text: string;
  readonly headers: Headers;
}

/** path is the API path after /v1/, e.g. "secret/data/a". */
export async function vaultCall(
  baseUrl: string,
  method: string,
  path: string,
  options: VaultCallOptions = {},
): Promise<VaultCallResult> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers['X-Vault-Token'] = options.token;
  const init: RequestInit = { method, headers };
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }
  const res = await fetch(`${baseUrl}/v1/${path}`, init);
  const text = await res.text();
  return {
    status: res.status,
    json: text === '' ? undefined : (JSON.parse(text) as unknown),
    text,
    headers: res.headers,
  };
}
