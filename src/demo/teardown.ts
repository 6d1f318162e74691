/**
 * Stopping everything the demo started and removing its workspace: in order (the broker first, so
 * it shuts down cleanly while its bus still answers; then the PF driver stand-ins, pf_bb_config's
 * detached daemon among them; the bus last), at the end of a run, on failure, on Ctrl-C or
 * SIGTERM, and for `vfbroker demo --stop <dir>`. If the process exits some other way, an exit
 * handler still kills whatever names the workspace and removes it.
 */
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { VfbError } from '../errors.js';
import { unlockDemo } from './lock.js';
import { killNow, processesNaming, stopProcesses } from './processes.js';
import { openWorkspace, type Workspace } from './workspace.js';

const STOP_DEADLINE_MS = 10_000;

export interface Stoppable {
  stop(): Promise<void>;
  leaveRunning(): void;
}

/** The demo's own processes, stopped in order; then the workspace goes. */
async function tearDown(
  ws: Workspace,
  stopBroker: () => Promise<void>,
  stopBus: () => Promise<void>,
  busPid: number | null,
): Promise<void> {
  await stopBroker();
  const others = processesNaming(ws.root).filter((pid) => pid !== busPid);
  await stopProcesses(others, STOP_DEADLINE_MS);
  await stopBus();
  const stuck = await stopProcesses(processesNaming(ws.root), STOP_DEADLINE_MS);
  await rm(ws.root, { recursive: true, force: true });
  unlockDemo(ws.root);
  if (stuck.length > 0) {
    throw new VfbError(
      'UNAVAILABLE',
      `processes ${stuck.join(', ')} of the demo do not exit, even on SIGKILL`,
    );
  }
}

/** The running demo's side of clean-up: idempotent, armed for signals and for exit. */
export class Teardown {
  broker: (Stoppable & { readonly pid: number }) | null = null;
  bus: (Stoppable & { readonly pid: number }) | null = null;
  private done: Promise<void> | null = null;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    // A signal during a clean-up already under way changes nothing: that one finishes.
    if (this.done !== null) return;
    this.notify(`${signal}: stopping what the demo started and removing ${this.ws.root}`);
    void this.cleanUp().finally(() => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
  };
  private readonly onExit = () => {
    killNow(processesNaming(this.ws.root));
    rmSync(this.ws.root, { recursive: true, force: true });
    unlockDemo(this.ws.root);
  };

  constructor(
    readonly ws: Workspace,
    private readonly notify: (line: string) => void,
  ) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    process.on('exit', this.onExit);
  }

  cleanUp(): Promise<void> {
    this.done ??= tearDown(
      this.ws,
      () => this.broker?.stop() ?? Promise.resolve(),
      () => this.bus?.stop() ?? Promise.resolve(),
      this.bus?.pid ?? null,
    ).finally(() => this.disarm());
    return this.done;
  }

  /** --keep: the processes outlive us, and the workspace stays for `--stop`. */
  leaveRunning(): void {
    this.disarm();
    this.broker?.leaveRunning();
    this.bus?.leaveRunning();
  }

  private disarm(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    process.off('exit', this.onExit);
  }
}

/** `vfbroker demo --stop <dir>`: the same order, for a demo left running by --keep. */
export async function stopKeptDemo(dir: string): Promise<{ directory: string; processes: number }> {
  const { ws, record } = await openWorkspace(dir);
  // A pid in the record counts only while its command line still names the workspace.
  const ours = new Set(processesNaming(ws.root));
  const stopOne = (pid: number) => async () => {
    if (ours.has(pid)) await stopProcesses([pid], STOP_DEADLINE_MS);
  };
  await tearDown(ws, stopOne(record.brokerPid), stopOne(record.busPid), record.busPid);
  return { directory: ws.root, processes: ours.size };
}
