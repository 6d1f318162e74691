/**
 * `npm run bench:broker`: PrepareGuest throughput and latency through a real dbus-daemon (private,
 * configured like the system bus, with the bus policy vfbroker ships), against a broker at scale:
 * 64 PFs × 64 VFs on the sysfs simulator with a token-needing plugin, the FileStore and a policy of
 * 1,000 guest rules. The broker runs in a child process, so its RSS and CPU are its own.
 *
 * 1, 8 and 64 clients, each on its own bus connection as hooks are, each calling in a loop for
 * RUN_MS: PrepareGuest with 1–8 VFs of one guest and the right tokens (every verdict must be ok, or
 * the bench stops). Three rounds:
 * - new leases: each PrepareGuest leases its VFs afresh (the lease table is written to disk), then
 *   ReleaseGuest (not timed, not counted) — what a real guest start costs;
 * - held leases: guests ask again for VFs they already hold, which changes nothing and writes
 *   nothing — the cost of the bus, the policy and the verdicts alone;
 * - ping: org.freedesktop.DBus.Peer.Ping to the broker, which its D-Bus adapter answers without
 *   the broker doing anything — the floor this machine, this bus and these clients set, against
 *   which the other two can be read.
 * Client c only uses the guests of PF c, so no two clients want a VF at once. The caches are warm:
 * every client makes one round of calls first. The clients speak D-Bus as the hook does, with its
 * wire client (src/dbus/wire/), or with dbus-next as the CLI does (`--client dbus-next`): the
 * clients share this machine's two cores with the broker and the bus, so a heavier client shows
 * up in every latency.
 *
 * The broker's GC columns: the share of the time its collections paused it, and how many
 * mark-compacts (old-generation collections, the long pauses every call in flight waits out) ran.
 *
 * Memory: the broker's RSS at rest — after start-up, before the runs, and after the runs — with its
 * peak. Start-up and load leave V8's heap grown; the broker gives that memory back once its event
 * loop has been idle for a whole check (src/broker/idle-trim.ts), or V8's memory reducer does. So
 * each time the bench watches the idle broker until that collection has run (or for IDLE_MS), and
 * prints what it saw. Prints figures; asserts nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startBrokerChild, type BrokerChild } from './support/broker-process.js';
import { PEER_PING } from './support/dbus-floor.js';
import { catchInterrupt, runBench, throwIfInterrupted, type Interrupt } from './support/interrupt.js';
import { cpuSeconds } from './support/proc.js';
import { header, machineLoad, mb, ms, percentile, table, verdict } from './support/report.js';
import { guestsOfPf, VFS_PER_GUEST, type BenchGuest, type Scenario } from './support/scenario.js';
import type { DeviceVerdict, PrepareDevice } from '../src/broker/api.js';
import { IDLE_CHECK_MS } from '../src/broker/idle-trim.js';
import { startPrivateBus, type PrivateBus } from '../src/demo/private-bus.js';
import { BrokerClient } from '../src/dbus/client.js';
import { WireBrokerClient } from '../src/dbus/wire/client.js';
import { WireConnection } from '../src/dbus/wire/connection.js';
import { Message } from 'dbus-next';
import { VfbError } from '../src/errors.js';
import { pfAddress, vfAddress } from '../test/support/broker-world.js';

const SCENARIO: Scenario = { pfCount: 64, vfs: 64, guests: 1000 };
const LEVELS = [1, 8, 64] as const;
const RUN_MS = 3_000;
/** Per level, whatever RUN_MS allows: keeps a very fast machine's run (and its memory) bounded. */
const MAX_CALLS = 200_000;
const TARGET = { callsPerSecond: 5_000, p99Ms: 10, rssBytes: 100 * 1024 * 1024 } as const;
/** How long to watch the broker idle at most (two of its idle checks, with room), and how often to look. */
const IDLE_MS = 120_000;
const IDLE_SAMPLE_MS = 5_000;
/** Samples taken after the first collection that gives memory back: V8's reducer may run twice more, 8 s apart. */
const SAMPLES_AFTER_TRIM = 3;

/** PrepareGuest making new leases (then released) or asking for VFs its guest holds; or Peer.Ping. */
type Round = 'new' | 'held' | 'ping';

interface LevelResult {
  readonly round: Round;
  readonly clients: number;
  readonly calls: number;
  readonly seconds: number;
  readonly latencies: number[];
  /**
   * Per second of the level: CPU, busy event loop and the broker's GC pause seconds; the broker's
   * mark-compacts are a count over the level.
   */
  readonly load: Usage;
}

/** What a lane calls: PrepareGuest and ReleaseGuest as a hook makes them, and Peer.Ping. */
interface BenchClient {
  prepareGuest(
    guestUuid: string,
    guestName: string,
    devices: readonly PrepareDevice[],
  ): Promise<DeviceVerdict[]>;
  releaseGuest(guestUuid: string, reason: string): Promise<void>;
  ping(): Promise<void>;
  close(): void;
}

type ClientKind = 'wire' | 'dbus-next';

const CALL_TIMEOUT_MS = 25_000;
/** A guest no policy rule names and that holds nothing. */
const NO_GUEST = 'ffffffff-ffff-4fff-bfff-ffffffffffff';

async function benchClient(kind: ClientKind, address: string): Promise<BenchClient> {
  if (kind === 'dbus-next') {
    const client = await BrokerClient.connect({ address, callTimeoutMs: CALL_TIMEOUT_MS });
    return {
      prepareGuest: (...args) => client.prepareGuest(...args),
      releaseGuest: (...args) => client.releaseGuest(...args),
      // dbus-next takes a mutable body; Ping's is empty.
      ping: async () =>
        void (await client.connection.call(new Message({ ...PEER_PING, body: [] }), {
          timeoutMs: CALL_TIMEOUT_MS,
        })),
      close: () => client.close(),
    };
  }
  const options = { address, timeoutMs: CALL_TIMEOUT_MS, callTimeoutMs: CALL_TIMEOUT_MS };
  // The hook's client makes only its three calls: Ping goes over a second connection of its own.
  const [client, peer] = await Promise.all([
    WireBrokerClient.connect(options),
    WireConnection.connect(options),
  ]);
  // The wire client authenticates with its first call. Until then the bus counts a connection as
  // incomplete, and refuses new ones beyond max_incomplete_connections (64 on the system bus): one
  // call each now. Releasing a guest that holds nothing, as libvirt does after a failed prepare,
  // changes nothing.
  await Promise.all([peer.call(PEER_PING, CALL_TIMEOUT_MS), client.releaseGuest(NO_GUEST, 'shutdown')]);
  return {
    prepareGuest: (...args) => client.prepareGuest(...args),
    releaseGuest: (...args) => client.releaseGuest(...args),
    ping: async () => void (await peer.call(PEER_PING, CALL_TIMEOUT_MS)),
    close: () => {
      client.close();
      peer.close();
    },
  };
}

interface Lane {
  readonly client: BenchClient;
  readonly guests: readonly BenchGuest[];
}

/** When a level ends: at `until`, after `left` more calls in all, or on Ctrl-C. */
interface Limits {
  readonly until: number;
  left: number;
  readonly interrupt: Interrupt;
}

/** One client's loop within the limits: PrepareGuest (timed), then ReleaseGuest for new leases; or Ping. */
async function runLane(
  { client, guests }: Lane,
  tokens: readonly string[],
  round: Round,
  limits: Limits,
  latencies: number[],
): Promise<void> {
  for (let i = 0; performance.now() < limits.until && limits.left > 0 && !limits.interrupt.stopped; i++) {
    limits.left--;
    const guest = guests[i % guests.length] as BenchGuest;
    const start = performance.now();
    if (round === 'ping') await client.ping();
    else await prepare(client, guest, 1 + (i % VFS_PER_GUEST), tokens);
    latencies.push(performance.now() - start);
    if (round === 'new') await client.releaseGuest(guest.uuid, 'shutdown');
  }
}

/** PrepareGuest for the guest's first `vfs` VFs with the right token; anything but ok stops the bench. */
async function prepare(
  client: BenchClient,
  guest: BenchGuest,
  vfs: number,
  tokens: readonly string[],
): Promise<void> {
  const token = tokens[guest.pf] as string;
  const devices: PrepareDevice[] = guest.vfIndexes
    .slice(0, vfs)
    .map((n) => ({ address: vfAddress(guest.pf, n), presentedToken: token }));
  const verdicts = await client.prepareGuest(guest.uuid, guest.name, devices);
  const refused = verdicts.find((v) => v.verdict !== 'ok');
  if (refused !== undefined || verdicts.length !== devices.length) {
    throw new VfbError(
      'INTERNAL',
      `bench: ${guest.name} got ${refused?.verdict ?? 'too few verdicts'} for ${refused?.address ?? 'its VFs'}; the figures would be wrong`,
    );
  }
}

async function runLevel(
  lanes: readonly Lane[],
  tokens: readonly string[],
  round: Round,
  processes: Processes,
  level: { readonly runMs: number; readonly maxCalls: number; readonly interrupt: Interrupt },
): Promise<LevelResult> {
  const latencies: number[] = [];
  const before = await usage(processes);
  const start = performance.now();
  const limits = { until: start + level.runMs, left: level.maxCalls, interrupt: level.interrupt };
  await Promise.all(lanes.map((lane) => runLane(lane, tokens, round, limits, latencies)));
  const seconds = (performance.now() - start) / 1000;
  const after = await usage(processes);
  const spent = (k: keyof Usage) => (after[k] - before[k]) / seconds;
  return {
    round,
    clients: lanes.length,
    calls: latencies.length,
    seconds,
    latencies,
    load: {
      brokerCpu: spent('brokerCpu'),
      brokerLoop: spent('brokerLoop'),
      brokerGc: spent('brokerGc'),
      brokerMarkCompacts: after.brokerMarkCompacts - before.brokerMarkCompacts,
      busCpu: spent('busCpu'),
      benchCpu: spent('benchCpu'),
      benchLoop: spent('benchLoop'),
    },
  };
}

/**
 * The clients' guests: for new leases (and ping, which uses none) all the guests of their PF; for
 * held leases one guest per VF slot of the PF, each holding its whole slot (leased here, before the
 * runs).
 */
async function lanes(
  clients: readonly BenchClient[],
  round: Round,
  tokens: readonly string[],
): Promise<Lane[]> {
  const slots = Math.floor(SCENARIO.vfs / VFS_PER_GUEST);
  return Promise.all(
    clients.map(async (client, c) => {
      const all = guestsOfPf(SCENARIO, c);
      if (round !== 'held') return { client, guests: all };
      const guests = all.slice(0, slots);
      for (const guest of guests) await prepare(client, guest, VFS_PER_GUEST, tokens);
      return { client, guests };
    }),
  );
}

interface Processes {
  readonly broker: BrokerChild;
  readonly busPid: number;
}

/** Seconds of CPU (user + system, all threads) and of busy event loop, each process so far; the broker's GC. */
interface Usage {
  readonly brokerCpu: number;
  readonly brokerLoop: number;
  /** Seconds the broker's GC paused it, and how many of those pauses were mark-compacts. */
  readonly brokerGc: number;
  readonly brokerMarkCompacts: number;
  readonly busCpu: number;
  readonly benchCpu: number;
  readonly benchLoop: number;
}

async function usage(processes: Processes): Promise<Usage> {
  const { user, system } = process.cpuUsage();
  const sample = await processes.broker.sample();
  return {
    brokerCpu: await cpuSeconds(processes.broker.pid),
    brokerLoop: sample.loopActiveMs / 1000,
    brokerGc: sample.gcPauseMs / 1000,
    brokerMarkCompacts: sample.markCompacts,
    busCpu: await cpuSeconds(processes.busPid),
    benchCpu: (user + system) / 1e6,
    benchLoop: performance.eventLoopUtilization().active / 1000,
  };
}

/** The broker's memory at a moment: resident now, peak so far, and the V8 heap's share. */
interface Memory {
  readonly rss: number;
  readonly peak: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly markCompacts: number;
}

/** What the bench saw while the broker idled, and the last of it. */
interface Idle {
  readonly seen: readonly Memory[];
  readonly rest: Memory;
}

async function memory(broker: BrokerChild): Promise<Memory> {
  const { rss, heapUsed, heapTotal, external, markCompacts } = await broker.sample();
  return { rss, heapUsed, heapTotal, external, markCompacts, peak: await broker.peakRss() };
}

function describeMemory(m: Memory): string {
  return `RSS ${mb(m.rss)} (peak ${mb(m.peak)}; V8 heap ${mb(m.heapUsed)} used of ${mb(m.heapTotal)}, external ${mb(m.external)})`;
}

/**
 * The broker's memory every IDLE_SAMPLE_MS while it idles, from now until a few samples after its
 * heap was trimmed (an idle broker's only mark-compacts are those that give memory back), or IDLE_MS.
 */
async function watchIdle(broker: BrokerChild, interrupt: Interrupt): Promise<Idle> {
  let rest = await memory(broker);
  const seen = [rest];
  const before = rest.markCompacts;
  let after = 0;
  for (let t = 0; t < IDLE_MS && after < SAMPLES_AFTER_TRIM && !interrupt.stopped; t += IDLE_SAMPLE_MS) {
    await new Promise((resolve) => setTimeout(resolve, IDLE_SAMPLE_MS));
    rest = await memory(broker);
    seen.push(rest);
    if (rest.markCompacts > before) after++;
  }
  return { seen, rest };
}

function report(
  results: readonly LevelResult[],
  memoryAt: { readonly afterStart: Idle; readonly afterRuns: Idle },
  buildMs: number,
): string {
  const percent = (share: number) => `${Math.round(100 * share)}%`;
  const rows = [
    [
      'round',
      'clients',
      'calls',
      'calls/s',
      'p50 ms',
      'p99 ms',
      'broker CPU',
      'broker loop',
      'broker GC',
      'mark-compacts',
      'dbus-daemon CPU',
      'bench CPU',
      'bench loop',
    ],
    ...results.map((r) => [
      r.round === 'ping' ? 'ping (floor)' : `${r.round} leases`,
      String(r.clients),
      r.calls.toLocaleString('en'),
      Math.round(r.calls / r.seconds).toLocaleString('en'),
      ms(percentile(r.latencies, 50)),
      ms(percentile(r.latencies, 99)),
      percent(r.load.brokerCpu),
      percent(r.load.brokerLoop),
      percent(r.load.brokerGc),
      String(r.load.brokerMarkCompacts),
      percent(r.load.busCpu),
      percent(r.load.benchCpu),
      percent(r.load.benchLoop),
    ]),
  ];
  const most = Math.max(...LEVELS);
  const figures = (round: Round) => {
    const top = results.find((r) => r.round === round && r.clients === most);
    return top === undefined ? null : { rate: top.calls / top.seconds, p99: percentile(top.latencies, 99) };
  };
  const against = (round: Round) => {
    const top = figures(round);
    if (top === null) return `  ${round} leases: no run at ${most} clients`;
    return (
      `  ${round} leases, ${most} clients: ${Math.round(top.rate).toLocaleString('en')} calls/s (target ≥ ${TARGET.callsPerSecond.toLocaleString('en')}: ${verdict(top.rate >= TARGET.callsPerSecond)}), ` +
      `p99 ${ms(top.p99)} ms (target ≤ ${TARGET.p99Ms} ms: ${verdict(top.p99 <= TARGET.p99Ms)})`
    );
  };
  const floor = figures('ping');
  const { afterStart, afterRuns } = memoryAt;
  const atRest = [afterStart.rest, afterRuns.rest];
  const watched = (when: string, idle: Idle) => [
    `  broker idling ${when}, RSS every ${IDLE_SAMPLE_MS / 1000} s: ${idle.seen.map((m) => mb(m.rss).replace(' MB', '')).join(', ')} MB`,
    `    at rest: ${describeMemory(idle.rest)}`,
  ];
  return [
    table(rows),
    '',
    against('new'),
    against('held'),
    floor === null
      ? ''
      : `  floor, Peer.Ping with no broker work, ${most} clients: ${Math.round(floor.rate).toLocaleString('en')} calls/s, p99 ${ms(floor.p99)} ms ` +
        `(with ${most} calls always in flight, the mean wait is ${most} ÷ calls/s = ${ms((1000 * most) / floor.rate)} ms)`,
    ...watched('from ready, before the runs', afterStart),
    ...watched('after the runs', afterRuns),
    `  (the broker gives back what start-up and load grew V8's heap by once idle for a whole ${IDLE_CHECK_MS / 1000} s check)`,
    `  broker RSS at rest: ${mb(afterStart.rest.rss)} before the runs, ${mb(afterRuns.rest.rss)} after; target ≤ ${mb(TARGET.rssBytes)}: ${verdict(atRest.every((m) => m.rss <= TARGET.rssBytes))} (peak ${mb(afterRuns.rest.peak)})`,
    `  broker start-up (host, bring-up of ${SCENARIO.pfCount * SCENARIO.vfs} VFs, policy, bus name): ${(buildMs / 1000).toFixed(1)} s`,
    `  at the end: ${machineLoad()}`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  // --node-arg ARG (repeatable) runs the broker with that node option, e.g. --node-arg=--cpu-prof
  // --node-arg=--cpu-prof-dir=/tmp/prof for a CPU profile, or a V8 heap flag to see its effect on RSS.
  // --client dbus-next: the clients use dbus-next, as the CLI does, instead of the hook's wire client.
  const { values } = parseArgs({
    options: {
      'node-arg': { type: 'string', multiple: true, default: [] },
      client: { type: 'string', default: 'wire' },
    },
  });
  const nodeArgs = values['node-arg'];
  const kind = values.client;
  if (kind !== 'wire' && kind !== 'dbus-next') {
    throw new VfbError('INVALID_ARGUMENT', `--client must be wire or dbus-next, not ${JSON.stringify(kind)}`);
  }
  if (process.getuid?.() !== 0) {
    throw new VfbError('DENIED', 'bench:broker must run as root', {
      hint: 'PrepareGuest is for root only, and the bus runs the shipped policy, which names root',
    });
  }
  process.stdout.write(
    header('broker bench: PrepareGuest over a private dbus-daemon with the shipped bus policy', [
      `broker: ${SCENARIO.pfCount} PFs × ${SCENARIO.vfs} VFs (sysfs simulator, token-needing plugin), FileStore, ${SCENARIO.guests.toLocaleString('en')} guest rules; child process${nodeArgs.length > 0 ? ` with ${nodeArgs.join(' ')}` : ''}`,
      `load: ${LEVELS.join(', ')} clients (${kind === 'wire' ? "the hook's wire client" : 'dbus-next'}), one bus connection each, ${RUN_MS / 1000} s per level after a warm-up round; each call 1–${VFS_PER_GUEST} VFs with the right tokens (verdict ok)`,
      `      new leases: each call leases its VFs (lease table written), then ReleaseGuest (not timed, not counted)`,
      `      held leases: guests ask again for VFs they hold (no lease change, nothing written)`,
      `      ping: org.freedesktop.DBus.Peer.Ping to the broker, answered by its D-Bus adapter alone: the floor`,
      `targets: ≥ ${TARGET.callsPerSecond.toLocaleString('en')} calls/s and p99 ≤ ${TARGET.p99Ms} ms at 64 clients; RSS ≤ ${mb(TARGET.rssBytes)}`,
    ]),
  );
  const interrupt = catchInterrupt();
  const dir = await mkdtemp(join(tmpdir(), 'vfb-bench-broker-'));
  let bus: PrivateBus | undefined;
  let broker: BrokerChild | undefined;
  const clients: BenchClient[] = [];
  try {
    bus = await startPrivateBus({ directory: join(dir, 'bus'), policy: 'shipped' });
    broker = await startBrokerChild(
      { busAddress: bus.address, scenario: SCENARIO, hostDir: null },
      {
        logFile: join(dir, 'broker.log'),
        execArgv: nodeArgs,
      },
    );
    const address = bus.address;
    // One at a time, so that the bus never sees more than two unauthenticated connections at once.
    for (let c = 0; c < Math.max(...LEVELS); c++) clients.push(await benchClient(kind, address));
    // The tokens the guests' definitions would carry, asked for as root with the CLI's client.
    const tokens: string[] = [];
    const admin = await BrokerClient.connect({ address });
    try {
      for (let pf = 0; pf < SCENARIO.pfCount; pf++) tokens.push(await admin.getToken(pfAddress(pf)));
    } finally {
      admin.close();
    }
    const processes = { broker, busPid: bus.pid };
    const afterStart = await watchIdle(broker, interrupt);

    const results: LevelResult[] = [];
    for (const round of ['new', 'held', 'ping'] as const) {
      const all = await lanes(clients, round, tokens);
      // Warm-up: a round of calls, all clients at once.
      await runLevel(all, tokens, round, processes, {
        runMs: Number.POSITIVE_INFINITY,
        maxCalls: SCENARIO.guests,
        interrupt,
      });
      for (const n of LEVELS) {
        const level = { runMs: RUN_MS, maxCalls: MAX_CALLS, interrupt };
        results.push(await runLevel(all.slice(0, n), tokens, round, processes, level));
      }
    }
    if (!interrupt.stopped) {
      const afterRuns = await watchIdle(broker, interrupt);
      process.stdout.write(report(results, { afterStart, afterRuns }, broker.buildMs));
    }
  } catch (err) {
    // A Ctrl-C also stops the bus and the broker, so calls fail: that is the interruption, not an error.
    if (!interrupt.stopped) throw err;
  } finally {
    for (const c of clients) c.close();
    await broker?.stop();
    await bus?.stop();
    await rm(dir, { recursive: true, force: true });
    interrupt.dispose();
  }
  throwIfInterrupted(interrupt);
}

await runBench('bench:broker', main);
