/**
 * A private dbus-daemon configured like the system bus: `<type>system</type>`, EXTERNAL auth only,
 * system.conf's default-deny policy and limits, and the bus policy file vfbroker ships, included
 * from a system.d directory as the real bus does. `vfbroker demo` runs the broker on one, and the
 * integration tests use it through test/support/dbus-daemon.ts.
 *
 * Two flavours of that policy file:
 * - 'shipped': etc/dbus-1/system.d/org.vfbroker.Broker1.conf byte for byte. Its rules for
 *   user="root" only apply to a root process.
 * - 'current-user': a COPY in which every user="root" becomes the uid of this process, so a
 *   non-root demo or test exercises the real policy shape with its own user standing in for root.
 *   Run as root, the two behave the same.
 *
 * Shell equivalent: `dbus-daemon --config-file=DIR/bus.conf --nofork --print-address=1`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VfbError } from '../errors.js';
import { commandNotFound } from '../process/packages.js';
import { packageFile } from '../package-root.js';

/** The bus policy vfbroker installs in /etc/dbus-1/system.d/. */
export const SHIPPED_POLICY = packageFile('etc/dbus-1/system.d/org.vfbroker.Broker1.conf');

export type PolicyFlavour = 'shipped' | 'current-user';

export interface PrivateBusOptions {
  /** Where the socket, the bus configuration and the policy go; created if missing, never removed. */
  readonly directory: string;
  readonly policy: PolicyFlavour;
  /**
   * Start it in a process group of its own, so that a Ctrl-C in our terminal reaches only us and we
   * stop things in order. It is still killed when this process exits, until leaveRunning().
   */
  readonly detached?: boolean;
}

export interface PrivateBus {
  /** The bus address, `unix:path=…`, for connectBus({ address }). */
  readonly address: string;
  /** The policy file the daemon loaded. */
  readonly policyPath: string;
  readonly pid: number;
  /** Stops the daemon (SIGTERM) and waits for it to exit; idempotent. */
  stop(): Promise<void>;
  /** Lets the daemon outlive this process (`vfbroker demo --keep`). */
  leaveRunning(): void;
}

// system.conf's default context and limits (dbus 1.14), minus what needs root (user, pidfile,
// service helper) and what a private bus must not do (syslog, system service activation).
const BUS_CONFIG = (socket: string, policyDir: string) => `<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path=${socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <limit name="max_replies_per_connection">128</limit>
  <limit name="max_connections_per_user">256</limit>
  <limit name="max_match_rules_per_connection">512</limit>
  <limit name="max_message_size">33554432</limit>
  <includedir>${policyDir}</includedir>
</busconfig>
`;

const DBUS_DAEMON = 'dbus-daemon';
const STARTUP_TIMEOUT_MS = 5_000;

export async function startPrivateBus(options: PrivateBusOptions): Promise<PrivateBus> {
  const dir = options.directory;
  const policyDir = join(dir, 'system.d');
  await mkdir(policyDir, { recursive: true });
  const policyPath = join(policyDir, 'org.vfbroker.Broker1.conf');
  await writeFile(policyPath, await policyText(options.policy));
  const configPath = join(dir, 'bus.conf');
  const socket = join(dir, 'bus');
  await writeFile(configPath, BUS_CONFIG(socket, policyDir));
  // Its complaints go to a file rather than a pipe, so they outlive us as the daemon may.
  const logPath = join(dir, 'dbus-daemon.log');
  const log = openSync(logPath, 'a', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(
      DBUS_DAEMON,
      [`--config-file=${configPath}`, '--nofork', '--nopidfile', '--nosyslog', '--print-address=1'],
      { stdio: ['ignore', 'pipe', log], detached: options.detached === true },
    );
  } finally {
    closeSync(log);
  }
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForAddress(child, logPath);
  } catch (err) {
    child.kill('SIGKILL');
    process.off('exit', killOnExit);
    throw err;
  }
  return {
    address: `unix:path=${socket}`,
    policyPath,
    pid: child.pid as number,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    leaveRunning() {
      process.off('exit', killOnExit);
      // It writes nothing to stdout after its address; without the pipe nothing ties us together.
      child.stdout?.destroy();
      child.unref();
    },
  };
}

/** The policy text for a flavour; the copy says so in its first line. */
export async function policyText(flavour: PolicyFlavour): Promise<string> {
  const shipped = await readFile(SHIPPED_POLICY, 'utf8');
  if (flavour === 'shipped') return shipped;
  const uid = process.getuid?.() ?? 0;
  const replaced = shipped.replaceAll('user="root"', `user="${uid}"`);
  if (replaced === shipped) {
    throw new VfbError('INTERNAL', `${SHIPPED_POLICY} has no user="root" rule to stand in for`);
  }
  return replaced.replace(
    '<busconfig>',
    `<!-- COPY for a private bus: the rules for root apply to uid ${uid}, the user running it. -->\n<busconfig>`,
  );
}

function waitForAddress(child: ChildProcess, logPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let settled = false;
    const timer = setTimeout(
      () => fail(`did not print its address within ${STARTUP_TIMEOUT_MS} ms`),
      STARTUP_TIMEOUT_MS,
    );
    const fail = (why: string | VfbError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (why instanceof VfbError) return reject(why);
      void readFile(logPath, 'utf8')
        .catch(() => '')
        .then((text) => {
          const said = text.trim().split('\n')[0] ?? '';
          reject(new VfbError('UNAVAILABLE', `${DBUS_DAEMON} ${why}${said ? `: ${said}` : ''}`));
        });
    };
    child.once('error', (err: NodeJS.ErrnoException) =>
      fail(
        err.code === 'ENOENT'
          ? commandNotFound(DBUS_DAEMON, 'searched PATH')
          : `could not start (${err.code ?? err.message})`,
      ),
    );
    child.once('exit', (code) => fail(`exited with status ${code}`));
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!settled && out.includes('\n')) {
        settled = true;
        clearTimeout(timer);
        resolve();
      }
    });
  });
}
