/**
 * A Vault API test server: a real HTTP server on loopback that implements, with Vault's documented
 * semantics, the parts of Vault vfbroker uses (KV v2, token and AppRole auth, ACL policies,
 * sys/health, sealing, response wrapping), plus injectable faults and a request log. Tests and
 * benchmarks talk to it over HTTP exactly as they would to `vault server -dev`.
 *
 * What it does not do, and real Vault does: TLS, namespaces, leases on secrets, PATCH, token
 * creation over the API, entity/identity, delete_version_after scheduling, audit devices.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AppRoleSpec } from './approle.js';
import { VaultCore } from './core.js';
import { FaultInjector, faultMessage, type VaultFault } from './faults.js';
import { apiPathOf, errorBody, parseApiRequest, VaultApiError, type ApiResponse } from './http.js';
import { LIST_ALIAS, ListMethodConnection } from './list-method.js';

export type { VaultFault } from './faults.js';

export interface VaultRequestRecord {
  readonly method: string;
  /** The URL path, without the query string. */
  readonly path: string;
  /** The status answered; 0 when the connection was dropped without an answer. */
  readonly status: number;
}

export interface VaultTestServer {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** A token with the root policy, never expiring. */
  readonly rootToken: string;
  close(): Promise<void>;
  /** Sealed: every API call answers 503 {"errors":["Vault is sealed"]}; sys/health 503. */
  seal(): void;
  unseal(): void;
  /** "secret" is enabled by default, like `vault server -dev`. */
  enableKv2(mount: string): void;
  /** Vault ACL policy text (path "..." { capabilities = [...] }). */
  writePolicy(name: string, hcl: string): void;
  createToken(opts: {
    policies: string[];
    ttlSeconds?: number;
    renewable?: boolean;
    explicitMaxTtlSeconds?: number;
  }): string;
  createAppRole(
    name: string,
    opts: { policies: string[]; tokenTtlSeconds?: number; tokenMaxTtlSeconds?: number },
  ): { roleId: string; secretId: string };
  addFault(fault: VaultFault): void;
  clearFaults(): void;
  /** Token TTLs use the server's own clock, so tests never sleep. */
  advanceClock(seconds: number): void;
  /** Method, path and status of every request, in arrival order; no bodies, no tokens. */
  readonly requests: ReadonlyArray<VaultRequestRecord>;
  resetRequestLog(): void;
}

/** Vault's default max_request_size is 32 MiB; nothing vfbroker sends comes near 1 MiB. */
const MAX_BODY_BYTES = 1024 * 1024;

export async function startVaultTestServer(opts: { port?: number } = {}): Promise<VaultTestServer> {
  const core = new VaultCore();
  core.enableKv2('secret');
  const root = core.tokens.createRoot();
  const faults = new FaultInjector();
  let log: VaultRequestRecord[] = [];
  const closing = new AbortController();

  const http = createServer((req, res) => {
    serve(req, res).catch(() => res.destroy());
  });
  const sockets = new Set<Socket>();
  // node:http turns Nagle off on the sockets it accepts itself; this one is ours, so do it here,
  // or every answer written in two pieces waits for the client's delayed ACK.
  const tcp = createTcpServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    http.emit('connection', new ListMethodConnection(socket));
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method === LIST_ALIAS ? 'LIST' : (req.method ?? 'GET');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record = (status: number): void => {
      log.push({ method, path: url.pathname, status });
    };
    const fault = faults.take(method, apiPathOf(url.pathname) ?? url.pathname);

    if (fault?.kind === 'drop') {
      record(0);
      req.socket.destroy();
      return;
    }
    const body = await readBody(req);
    if (fault?.kind === 'latency') await sleep(fault.latencyMs ?? 0, undefined, { signal: closing.signal });

    let response: ApiResponse;
    if (fault?.kind === 'status') {
      const status = fault.status ?? 500;
      response = { status, body: errorBody([faultMessage(status)]) };
    } else {
      response = body === undefined ? tooLarge() : dispatch(core, method, url, req, body);
    }
    record(response.status);
    if (req.socket instanceof ListMethodConnection) req.socket.expectRequest();
    if (fault?.kind === 'truncate') sendTruncated(res, response);
    else send(res, response, body === undefined);
  }

  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(opts.port ?? 0, '127.0.0.1', () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  const { port } = tcp.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    rootToken: root.id,
    close: () =>
      new Promise<void>((resolve, reject) => {
        closing.abort();
        tcp.close((err) => (err === undefined ? resolve() : reject(err)));
        http.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      }),
    seal: () => {
      core.sealed = true;
    },
    unseal: () => {
      core.sealed = false;
    },
    enableKv2: (mount) => core.enableKv2(mount),
    writePolicy: (name, hcl) => core.policies.write(name, hcl),
    createToken: (spec) =>
      core.tokens.create({
        policies: spec.policies,
        path: 'auth/token/create',
        displayName: 'token',
        ttlSeconds: spec.ttlSeconds,
        renewable: spec.renewable,
        explicitMaxTtlSeconds: spec.explicitMaxTtlSeconds,
      }).id,
    createAppRole: (name, spec: AppRoleSpec) => core.approle.createRole(name, spec),
    addFault: (fault) => faults.add(fault),
    clearFaults: () => faults.clear(),
    advanceClock: (seconds) => core.clock.advance(seconds),
    get requests() {
      return [...log];
    },
    resetRequestLog: () => {
      log = [];
    },
  };
}

function dispatch(
  core: VaultCore,
  method: string,
  url: URL,
  req: IncomingMessage,
  body: string,
): ApiResponse {
  try {
    return core.handle(parseApiRequest(method, url, req.headers, body));
  } catch (err) {
    if (err instanceof VaultApiError) return { status: err.status, body: errorBody(err.errors) };
    // A bug in the test server itself: say so loudly instead of imitating a Vault error.
    return { status: 500, body: errorBody([`vault test server bug: ${(err as Error).message}`]) };
  }
}

function tooLarge(): ApiResponse {
  return { status: 413, body: errorBody(['http: request body too large']) };
}

/** The body as text, or undefined when it exceeds MAX_BODY_BYTES. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Vault writes JSON with Go's json.Encoder, which ends the body with a newline. */
function encode(response: ApiResponse): Buffer | undefined {
  return response.body === undefined ? undefined : Buffer.from(`${JSON.stringify(response.body)}\n`);
}

/** closeAfter: the request body was not read to its end, so the connection cannot be reused. */
function send(res: ServerResponse, response: ApiResponse, closeAfter: boolean): void {
  const payload = encode(response);
  res.writeHead(response.status, {
    'cache-control': 'no-store',
    ...(closeAfter ? { connection: 'close' } : {}),
    ...(payload === undefined
      ? {}
      : { 'content-type': 'application/json', 'content-length': payload.length }),
  });
  res.end(payload, () => {
    if (closeAfter) res.destroy();
  });
}

/**
 * The request has been applied; the answer announces its full length but only the first half of
 * the body is sent before the connection is destroyed. A bodiless answer is announced as "{}"
 * and cut after one byte, so the client always sees a broken body.
 */
function sendTruncated(res: ServerResponse, response: ApiResponse): void {
  const payload = encode(response) ?? Buffer.from('{}');
  res.writeHead(response.body === undefined ? 200 : response.status, {
    'cache-control': 'no-store',
    'content-type': 'application/json',
    'content-length': payload.length,
  });
  res.write(payload.subarray(0, Math.max(1, Math.floor(payload.length / 2))), () => res.destroy());
}
