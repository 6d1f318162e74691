/**
 * A private dbus-daemon configured like the system bus: `<type>system</type>`, EXTERNAL auth only,
 * system.conf's default-deny policy and limits, and the bus policy file vfbroker ships, included
 * from a system.d directory as the real bus does.
 *
 * Two flavours of that policy file:
 * - 'shipped': etc/dbus-1/system.d/org.vfbroker.Broker1.conf byte for byte. Its rules for
 *   user="root" only apply to a root test process, so test/root/ uses it.
 * - 'current-user' (default): a TEST COPY in which every user="root" becomes the uid running the
 *   test, so a non-root `npm test` exercises the real adapter and the real policy shape, with the
 *   test user standing in for root. Run as root, the two behave the same.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from './repo.js';

export const SHIPPED_POLICY = repoPath('etc/dbus-1/system.d/org.vfbroker.Broker1.conf');

export type PolicyFlavour = 'shipped' | 'current-user';

export interface TestBus {
  /** The bus address, `unix:path=…`, for connectBus({ address }). */
  readonly address: string;
  /** The policy file the daemon loaded. */
  readonly policyPath: string;
  stop(): Promise<void>;
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

const STARTUP_TIMEOUT_MS = 5_000;

export async function startDbusDaemon(options: { readonly policy?: PolicyFlavour } = {}): Promise<TestBus> {
  const dir = await mkdtemp(join(tmpdir(), 'vfbroker-bus-'));
  // Callers in test/root run as nobody and must reach the socket.
  await chmod(dir, 0o755);
  const policyDir = join(dir, 'system.d');
  await mkdir(policyDir);
  const policyPath = join(policyDir, 'org.vfbroker.Broker1.conf');
  await writeFile(policyPath, await policyText(options.policy ?? 'current-user'));
  const configPath = join(dir, 'bus.conf');
  const socket = join(dir, 'bus');
  await writeFile(configPath, BUS_CONFIG(socket, policyDir));

  const child = spawn(
    'dbus-daemon',
    [`--config-file=${configPath}`, '--nofork', '--nopidfile', '--nosyslog', '--print-address=1'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  try {
    await waitForAddress(child, () => stderr);
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    address: `unix:path=${socket}`,
    policyPath,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The policy text for a flavour; the test copy says so in its first line. */
export async function policyText(flavour: PolicyFlavour): Promise<string> {
  const shipped = await readFile(SHIPPED_POLICY, 'utf8');
  if (flavour === 'shipped') return shipped;
  const uid = process.getuid?.() ?? 0;
  const replaced = shipped.replaceAll('user="root"', `user="${uid}"`);
  if (replaced === shipped) throw new Error(`${SHIPPED_POLICY} has no user="root" rule to stand in for`);
  return replaced.replace(
    '<busconfig>',
    `<!-- TEST COPY: the rules for root apply to uid ${uid}, the user running the tests. -->\n<busconfig>`,
  );
}

function waitForAddress(child: ChildProcess, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail('did not print its address in time'), STARTUP_TIMEOUT_MS);
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`dbus-daemon ${why}: ${stderr().trim()}`));
    };
    child.once('error', (err) => fail(`could not start (${err.message})`));
    child.once('exit', (code) => fail(`exited with status ${code}`));
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}
