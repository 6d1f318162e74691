/**
 * A private dbus-daemon for tests, configured like the system bus with the bus policy vfbroker
 * ships (src/demo/private-bus.ts, which `vfbroker demo` uses too), in a temporary directory of its
 * own that stop() removes.
 *
 * Policy flavours:
 * - 'shipped': etc/dbus-1/system.d/org.vfbroker.Broker1.conf byte for byte; its rules for
 *   user="root" only apply to a root test process, so test/root/ uses it.
 * - 'current-user' (default): a copy in which every user="root" becomes the uid running the test,
 *   so a non-root `npm test` exercises the real adapter and the real policy shape.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPrivateBus, type PolicyFlavour } from '../../src/demo/private-bus.js';

export { policyText, SHIPPED_POLICY, type PolicyFlavour } from '../../src/demo/private-bus.js';

export interface TestBus {
  /** The bus address, `unix:path=…`, for connectBus({ address }). */
  readonly address: string;
  /** The policy file the daemon loaded. */
  readonly policyPath: string;
  stop(): Promise<void>;
}

export async function startDbusDaemon(options: { readonly policy?: PolicyFlavour } = {}): Promise<TestBus> {
  const dir = await mkdtemp(join(tmpdir(), 'vfbroker-bus-'));
  try {
    // Callers in test/root run as nobody and must reach the socket.
    await chmod(dir, 0o755);
    const bus = await startPrivateBus({ directory: dir, policy: options.policy ?? 'current-user' });
    return {
      address: bus.address,
      policyPath: bus.policyPath,
      async stop() {
        await bus.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
