/**
 * Gives back, once the broker is idle, the memory a burst of calls grew V8's heap by (decision 0010).
 *
 * V8 shrinks its heap only in a memory-reducing collection, which its memory reducer starts after
 * an old-generation collection that found the old generation grown by 10 MB since the last one. A
 * burst of guest starts grows the young generation to its largest (two 16 MB semi-spaces) but leaves
 * little in the old generation, so nothing ever starts the reducer and the broker would sit idle at
 * its peak resident size for good. The inspector's HeapProfiler.collectGarbage is V8's
 * LowMemoryNotification: one full, memory-reducing collection (about 20 ms here), run only after a
 * whole interval with the event loop all but idle, so no call waits on it in a burst. An in-process
 * inspector session opens no port.
 */
import { getHeapStatistics } from 'node:v8';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';

export interface IdleTrimOptions {
  /** How often to look; the loop must have been idle for the whole of it. */
  readonly everyMs?: number;
  /** Heap committed beyond what is used, below which there is nothing worth a collection. */
  readonly slackBytes?: number;
}

/** How often `vfbroker serve` looks. */
export const IDLE_CHECK_MS = 30_000;

/** Busier than this over an interval (share of time the event loop ran) is not idle. */
const IDLE_UTILIZATION = 0.01;

/** Starts looking; `stop` ends it. Without an inspector in this node build it does nothing. */
export function trimWhenIdle(logger: Logger, options: IdleTrimOptions = {}): { stop(): void } {
  const { everyMs = IDLE_CHECK_MS, slackBytes = 16 * 1024 * 1024 } = options;
  if (!process.features.inspector) {
    logger.debug('this node has no inspector: the heap shrinks only when V8 decides to');
    return { stop: () => undefined };
  }
  let before = performance.eventLoopUtilization();
  let trimming = false;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, before);
    before = now;
    const { total_heap_size: total, used_heap_size: used } = getHeapStatistics();
    if (trimming || utilization > IDLE_UTILIZATION || total - used < slackBytes) return;
    trimming = true;
    void collectAllGarbage()
      .then(() => logger.debug({ heapBytes: getHeapStatistics().total_heap_size }, 'idle: heap trimmed'))
      .catch((err: unknown) => logger.warn({ err }, 'idle: could not trim the heap'))
      .finally(() => (trimming = false));
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

async function collectAllGarbage(): Promise<void> {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  try {
    await new Promise<void>((resolve, reject) =>
      session.post('HeapProfiler.collectGarbage', (err) => (err ? reject(err) : resolve())),
    );
  } finally {
    session.disconnect();
  }
}
