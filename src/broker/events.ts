/**
 * The broker's events (TokenRotated, GuestRefused) fanned out to whoever listens: the D-Bus
 * service turns them into signals. A listener that throws is logged and does not stop the others.
 */
import type { BrokerEvents } from './api.js';
import type { BrokerEventSource } from './dbus/service.js';
import type { Logger } from '../log.js';
import type { PciAddress } from '../pci/address.js';

export class EventHub implements BrokerEvents, BrokerEventSource {
  readonly #listeners = new Set<BrokerEvents>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  subscribe(listener: BrokerEvents): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  tokenRotated(pf: PciAddress, generation: number): void {
    this.#each((l) => l.tokenRotated(pf, generation));
  }

  guestRefused(
    guestUuid: string,
    address: PciAddress,
    verdict: Parameters<BrokerEvents['guestRefused']>[2],
  ): void {
    this.#each((l) => l.guestRefused(guestUuid, address, verdict));
  }

  #each(call: (l: BrokerEvents) => void): void {
    for (const l of this.#listeners) {
      try {
        call(l);
      } catch (err) {
        this.#logger.error({ err }, 'event listener failed');
      }
    }
  }
}
