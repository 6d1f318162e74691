/**
 * The store broker.yaml names, opened: the one place that turns the resolved config into a
 * TokenStore, so the daemon and the CLI open it the same way.
 */
import type { BrokerConfig } from '../../config/broker-config.js';
import type { Logger } from '../../log.js';
import { FileStore } from './file-store.js';
import type { TokenStore } from './token-store.js';
import { VaultStore } from './vault-store.js';
import type { VaultAuthOptions } from './vault-auth.js';

export function openStore(
  config: Pick<BrokerConfig, 'store' | 'hostId'>,
  logger: Logger,
): Promise<TokenStore> {
  const store = config.store;
  if (store.type === 'file') return FileStore.open({ directory: store.directory }, logger);
  const auth: VaultAuthOptions =
    store.auth.method === 'token'
      ? { tokenFile: store.auth.tokenFile }
      : {
          approle: {
            roleIdFile: store.auth.roleIdFile,
            secretIdFile: store.auth.secretIdFile,
            mount: store.auth.mount,
          },
        };
  return VaultStore.open(
    {
      address: store.address,
      ...(store.caFile === null ? {} : { caFile: store.caFile }),
      auth,
      mount: store.mount,
      prefix: store.prefix,
      requestTimeoutMs: store.requestTimeoutMs,
      hostId: config.hostId,
    },
    { logger },
  );
}
