/**
 * An HTTPS front for the Vault API test server (which speaks plain HTTP), to test the store's TLS
 * settings. The key and certificate below are a throwaway pair made for these tests only
 * (`openssl req -x509 -newkey ec … -subj "/CN=vfbroker test Vault" -addext subjectAltName=IP:127.0.0.1`,
 * valid until 2126); they protect nothing.
 */
import { request } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export const TEST_CA_PEM = `-----BEGIN CERTIFICATE-----
MIIBpTCCAUqgAwIBAgIUNJHBLd3K0EQ7p6QuMdiHndbJkT8wCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTdmZicm9rZXIgdGVzdCBWYXVsdDAgFw0yNjExMjQwMTE3Mzha
GA8yMTI2MTAzMTAxMTczOFowHjEcMBoGA1UEAwwTdmZicm9rZXIgdGVzdCBWYXVs
dDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABONZ3P4nTJmOlqHenX/n0su+415h
w5DdWcc0+9XbfprxOnPBjotgEmCY35besIO1bL91xZA/XDQHs5l4vug0DGCjZDBi
MB0GA1UdDgQWBBQxEiZn4ngD2cA1urshTzR/yxDTvzAfBgNVHSMEGDAWgBQxEiZn
4ngD2cA1urshTzR/yxDTvzAPBgNVHRMBAf8EBTADAQH/MA8GA1UdEQQIMAaHBH8A
AAEwCgYIKoZIzj0EAwIDSQAwRgIhAIobVLak4+wUeFjlJHm6ntLzRW0ASDJUFiN2
VAe/An2AAiEA1D9e/CiBE/lp7uXrzVifBihy0mQ0yCY3caAU9mIN+4o=
-----END CERTIFICATE-----
`;

const TEST_KEY_PEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgDe4Wp1G4xI9FTiM5
RNMXdSk51CqLUR6nl0OPx1qkGCGhRANCAATjWdz+J0yZjpah3p1/59LLvuNeYcOQ
3VnHNPvV236a8TpzwY6LYBJgmN+W3rCDtWy/dcWQP1w0B7OZeL7oNAxg
-----END PRIVATE KEY-----
`;

export interface TlsProxy {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  close(): Promise<void>;
}

export async function startTlsProxy(target: string): Promise<TlsProxy> {
  const upstream = new URL(target);
  const server = createServer({ cert: TEST_CA_PEM, key: TEST_KEY_PEM }, (req, res) => {
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
