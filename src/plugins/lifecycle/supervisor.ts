/**
 * Keeps the PF driver processes a plugin starts (a DPDK PF application, vfbroker's PF holder): one
 * per PF, its unexpected exit noticed, logged and kept for `status`, and all of them stopped on
 * shutdown. One instance per plugin instance, so nothing lives in module globals.
 */
import type { PciAddress } from '../../pci/address.js';
import type { Argv } from '../../process/argv.js';
import type { ProcessExit, SupervisedProcess } from '../../process/runner.js';
import { describeExit } from '../../process/wait-line.js';
import type { PluginContext } from '../contract.js';
import type { DriverStatus } from '../status.js';

export interface StartOptions {
  /**
   * Runs right after the spawn, before anything else is awaited (so no line is missed); when it
   * rejects, the process is killed and the start fails with that error.
   */
  readonly ready?: (proc: SupervisedProcess) => Promise<void>;
}

interface Entry {
  readonly proc: SupervisedProcess;
  stopping: boolean;
}

export class DriverSupervisor {
  private readonly running = new Map<PciAddress, Entry>();
  private readonly lastExits = new Map<PciAddress, ProcessExit & { readonly at: string }>();

  constructor(
    /** The driver's name in logs and status ("DPDK PF application", "PF holder"). */
    readonly name: string,
    /** How long a driver gets to exit after SIGTERM before SIGKILL. */
    private readonly stopDeadlineMs: number,
  ) {}

  /** Starts the driver of `pf`, replacing one that is still running. */
  async start(
    ctx: PluginContext,
    pf: PciAddress,
    argv: Argv,
    options: StartOptions = {},
  ): Promise<SupervisedProcess> {
    await this.stop(pf);
    const proc = await ctx.runner.spawn(argv);
    const entry: Entry = { proc, stopping: false };
    this.running.set(pf, entry);
    this.lastExits.delete(pf);
    proc.on('stderr', (line) => ctx.logger.debug({ pid: proc.pid, line }, `${this.name} says`));
    proc.on('exit', (exit) => {
      if (this.running.get(pf) === entry) this.running.delete(pf);
      if (entry.stopping) return;
      this.lastExits.set(pf, { ...exit, at: new Date().toISOString() });
      ctx.logger.warn(
        { pid: proc.pid, code: exit.code, signal: exit.signal },
        `${this.name} exited unexpectedly (${describeExit(exit)})`,
      );
    });
    ctx.logger.info({ pid: proc.pid, cmd: proc.command }, `${this.name} started`);
    if (options.ready) {
      try {
        await options.ready(proc);
      } catch (err) {
        await this.stop(pf);
        throw err;
      }
    }
    return proc;
  }

  /** The running process of `pf`, or null. */
  get(pf: PciAddress): SupervisedProcess | null {
    return this.running.get(pf)?.proc ?? null;
  }

  /** Stops the driver of `pf` if it runs (SIGTERM, SIGKILL after the deadline). */
  async stop(pf: PciAddress): Promise<void> {
    const entry = this.running.get(pf);
    if (!entry) return;
    entry.stopping = true;
    await entry.proc.kill(this.stopDeadlineMs);
    this.running.delete(pf);
  }

  status(pf: PciAddress, detail: (proc: SupervisedProcess) => string): Omit<DriverStatus, 'name'> {
    const proc = this.get(pf);
    const lastExit = this.lastExits.get(pf) ?? null;
    if (proc) return { running: true, pid: proc.pid, detail: detail(proc), lastExit };
    const why = lastExit
      ? `exited unexpectedly (${describeExit(lastExit)}) at ${lastExit.at}`
      : 'not running';
    return { running: false, pid: null, detail: `${this.name} ${why}`, lastExit };
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((pf) => this.stop(pf)));
  }
}
