/**
 * What the bench process and its broker child (broker-child.ts) say to each other over the IPC
 * channel of child_process.fork. The broker runs in a process of its own so that its memory and CPU
 * figures are its own, not the load generator's.
 */
import type { Scenario } from './scenario.js';

export interface ChildSpec {
  readonly busAddress: string;
  readonly scenario: Scenario;
  /** A directory where the broker saves its simulated host for the hook to read; null: nowhere. */
  readonly hostDir: string | null;
}

/** The simulated host, saved both ways the hook's settings file can name a host. */
export interface SavedHost {
  /** The persistent simulator's fixture and state file (src/sysfs/persistent.ts). */
  readonly simulator: { readonly fixture: string; readonly stateFile: string };
  /** A /sys-like tree for RealSysfs, as on a real host (sysfs-tree.ts). */
  readonly sysRoot: string;
}

/** The broker's garbage collections so far. */
export interface GcTotals {
  /** Every pause, young and old generation, ms. */
  readonly gcPauseMs: number;
  /** Old-generation collections. */
  readonly markCompacts: number;
}

export interface ResourceSample extends GcTotals {
  /** process.memoryUsage() of the broker, bytes. */
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  /** Memory outside the V8 heap that JS objects hold (Buffers). */
  readonly external: number;
  /** performance.eventLoopUtilization() of the broker so far: ms its event loop was busy, and idle. */
  readonly loopActiveMs: number;
  readonly loopIdleMs: number;
}

export type ChildMessage =
  | { readonly type: 'ready'; readonly buildMs: number; readonly host: SavedHost | null }
  | ({ readonly type: 'sample' } & ResourceSample)
  | { readonly type: 'failed'; readonly message: string };

export type ParentMessage = { readonly type: 'sample' } | { readonly type: 'stop' };
