/**
 * The benchmarks' broker process: builds a BrokerWorld for the scenario given in argv[2] (JSON
 * ChildSpec), exports it on the bus and says `ready` over IPC; then answers `sample` with its own
 * memory and event loop figures until `stop`. It logs as `vfbroker serve` does (JSON lines on stdout, level
 * info, one audit line per decision); the bench points stdout at a file. It stops by itself when
 * the bench goes away (the IPC channel closes) or on SIGINT/SIGTERM, so no broker outlives the bench.
 * Like `vfbroker serve`, it runs without V8's allocation-site pretenuring and trims its heap when
 * idle; it counts its own garbage collection pauses.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { constants, performance, PerformanceObserver, type NodeGCPerformanceDetail } from 'node:perf_hooks';
import { benchGuests } from './scenario.js';
import { writeHookSysfsTree } from './sysfs-tree.js';
import type { ChildMessage, ChildSpec, GcTotals, ParentMessage, SavedHost } from './broker-protocol.js';
import { trimWhenIdle } from '../../src/broker/idle-trim.js';
import { disablePretenuring } from '../../src/broker/pretenuring.js';
import { toVfbError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { BrokerWorld, type OnBus } from '../../test/support/broker-world.js';

function send(message: ChildMessage): void {
  if (process.connected) process.send?.(message);
}

function hangUp(): void {
  if (process.connected) process.disconnect();
}

async function saveHost(world: BrokerWorld, dir: string): Promise<SavedHost> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const sysRoot = join(dir, 'sys');
  await writeHookSysfsTree(world.sim, sysRoot);
  return { simulator: await world.saveHostState(join(dir, 'state.json')), sysRoot };
}

/** Adds up the process's GC pauses as they happen (perf_hooks reports each one after the fact). */
function watchGc(): GcTotals {
  const totals = { gcPauseMs: 0, markCompacts: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      totals.gcPauseMs += entry.duration;
      // Node's types leave `detail` off PerformanceEntry; a gc entry always has it.
      const { kind } = (entry as unknown as { detail: NodeGCPerformanceDetail }).detail;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) totals.markCompacts++;
    }
  }).observe({ entryTypes: ['gc'] });
  return totals;
}

async function main(): Promise<void> {
  disablePretenuring();
  const gc = watchGc();
  const spec = JSON.parse(process.argv[2] ?? '{}') as ChildSpec;
  const started = performance.now();
  const logger = createLogger({ level: 'info' });
  const world = await BrokerWorld.start({
    pfCount: spec.scenario.pfCount,
    vfs: spec.scenario.vfs,
    guests: benchGuests(spec.scenario),
    logger,
  });
  const trim = trimWhenIdle(logger);
  let onBus: OnBus | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      trim.stop();
      await onBus?.close();
      await world.dispose();
      hangUp();
    })());
  process.once('disconnect', () => void stop());
  // A Ctrl-C reaches the whole process group: stop in order, as the bench itself does.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stop());
  try {
    const host = spec.hostDir === null ? null : await saveHost(world, spec.hostDir);
    onBus = await world.exportOn(spec.busAddress);
    process.on('message', (message: ParentMessage) => {
      if (message.type === 'stop') return void stop();
      const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
      const { active, idle } = performance.eventLoopUtilization();
      send({
        type: 'sample',
        rss,
        heapUsed,
        heapTotal,
        external,
        loopActiveMs: active,
        loopIdleMs: idle,
        ...gc,
      });
    });
    send({ type: 'ready', buildMs: performance.now() - started, host });
  } catch (err) {
    await stop();
    throw err;
  }
}

main().catch((err: unknown) => {
  send({ type: 'failed', message: toVfbError(err).message });
  process.exitCode = 1;
  hangUp();
});
