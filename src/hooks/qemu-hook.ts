/**
 * libvirt's qemu hook (REFERENCE.md §4, DESIGN.md §3–4): the gate in front of every guest start.
 *
 * - `prepare`: one PrepareGuest call with every token-relevant VF and the vf-token the definition
 *   presents for it; the start goes ahead only when every verdict is ok / no-token-needed, otherwise
 *   the hook exits 1 with one stderr line per refused VF (libvirt quotes them in its error).
 * - `start`: the same check for VFs that only now have an address, i.e. interfaces drawing from a
 *   hostdev network pool. libvirt's live XML may show such a VF as a plain `<interface
 *   type='hostdev'>`, so every token-relevant interface is checked again; `<hostdev>`s were fully
 *   known at prepare and are not.
 * - `started` → GuestStarted, `stopped`/`release` → ReleaseGuest: never a failing exit (at started
 *   a failure would kill the new QEMU, at stopped/release libvirt ignores it), failures are logged.
 * - `migrate`/`restore` print nothing (= XML unchanged); other ops are ignored.
 *
 * Blast radius: a guest whose devices involve no VF token is answered from its XML and sysfs alone,
 * without loading or calling the D-Bus client. Every op reads stdin fully (bounded) first, and one
 * deadline covers reading it, connecting and the call: at prepare/start missing it refuses the start
 * (fail closed), elsewhere it exits 0. The hook never calls libvirt and never starts a process.
 */
import { isAcceptingVerdict, type DeviceVerdict } from '../broker/api.js';
import { toVfbError, VfbError } from '../errors.js';
import { decodeXmlBytes, readDomainXml, type DomainInfo } from '../libvirt/domain-xml.js';
import { readBounded, untilAborted } from './bounded-input.js';
import type { ConnectBroker, HookBrokerClient } from './broker-port.js';
import { parseHookArgv, type HookInvocation } from './hook-argv.js';
import type { HookLogger } from './hook-logger.js';
import { tokenDevices, type HostPci, type TokenDevice } from './token-devices.js';

export const DEFAULT_DEADLINE_MS = 5_000;
/** Far above any real domain XML, far below what would hurt to buffer. */
export const MAX_INPUT_BYTES = 4 * 1024 * 1024;
/** Exit status of a start refused because of a verdict (errors use their catalogue status). */
export const REFUSED_EXIT = 1;
const FIX_BROKER = 'systemctl status vfbroker';
const MAX_MESSAGE = 500;

export interface QemuHookOptions {
  /** The hook's arguments as libvirt passes them (without node and the script path). */
  readonly argv: readonly string[];
  readonly stdin: AsyncIterable<Uint8Array>;
  readonly sysfs: HostPci;
  readonly connectBroker: ConnectBroker;
  readonly logger: HookLogger;
  /** Budget for the whole run: reading stdin, connecting, the broker's reply. */
  readonly deadlineMs?: number;
  readonly maxInputBytes?: number;
}

export interface QemuHookResult {
  readonly exitCode: number;
  /** Lines for stderr, one per refused VF or failure, without newlines. */
  readonly stderrLines: readonly string[];
}

const OK: QemuHookResult = { exitCode: 0, stderrLines: [] };

export async function runQemuHook(options: QemuHookOptions): Promise<QemuHookResult> {
  const invocation = parseHookArgv(options.argv);
  const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), deadlineMs);
  const run = new HookRun(invocation, options, deadline.signal, deadlineMs);
  try {
    return await run.execute();
  } finally {
    clearTimeout(timer);
    run.close();
  }
}

class HookRun {
  private client: HookBrokerClient | null = null;

  constructor(
    private readonly invocation: HookInvocation,
    private readonly options: QemuHookOptions,
    private readonly signal: AbortSignal,
    private readonly deadlineMs: number,
  ) {}

  private get gating(): boolean {
    return this.invocation.op === 'prepare' || this.invocation.op === 'start';
  }

  async execute(): Promise<QemuHookResult> {
    const { op, rawOp, domain } = this.invocation;
    const { logger } = this.options;
    let info: DomainInfo;
    try {
      const bytes = await readBounded(
        this.options.stdin,
        this.options.maxInputBytes ?? MAX_INPUT_BYTES,
        this.signal,
        'the domain XML on stdin',
      );
      if (op === 'other' || op === 'migrate' || op === 'restore') {
        logger.debug({ op: rawOp, domain }, 'nothing to do for this op');
        return OK;
      }
      info = readDomainXml(decodeXmlBytes(bytes, 'the domain XML on stdin'), 'the domain XML on stdin');
    } catch (err) {
      return this.unreadable(toVfbError(err));
    }
    const devices = await tokenDevices(info, this.options.sysfs, logger);
    switch (op) {
      case 'prepare':
        return this.check(info, devices);
      case 'start':
        return this.check(
          info,
          devices.filter((d) => d.kind !== 'hostdev'),
        );
      case 'started':
        return this.notify(info, devices, 'GuestStarted', (c) => c.guestStarted(info.uuid));
      case 'stopped':
      case 'release': {
        const reason = op === 'stopped' ? 'stopped' : (this.invocation.extra ?? 'unknown');
        return this.notify(info, devices, 'ReleaseGuest', (c) => c.releaseGuest(info.uuid, reason));
      }
    }
  }

  close(): void {
    try {
      this.client?.close();
    } catch (err) {
      this.options.logger.debug({ code: toVfbError(err).code }, 'closing the broker connection failed');
    }
  }

  /** stdin could not be read or parsed: refuse a start (nothing was checked), let anything else pass. */
  private unreadable(err: VfbError): QemuHookResult {
    const { op, rawOp, domain } = this.invocation;
    if (!this.gating) {
      this.options.logger.warn(
        { op: rawOp, domain, code: err.code, reason: err.message },
        'ignoring unreadable domain XML',
      );
      return OK;
    }
    return {
      exitCode: err.exitCode,
      stderrLines: [`vfbroker: ${err.message}; no VF checked; ${op} of guest ${shown(domain)} refused`],
    };
  }

  private async check(info: DomainInfo, devices: readonly TokenDevice[]): Promise<QemuHookResult> {
    const { logger } = this.options;
    const fields = { op: this.invocation.op, guest: info.name, uuid: info.uuid };
    if (devices.length === 0) {
      logger.debug(fields, 'no device needs a VF token');
      return OK;
    }
    let verdicts: DeviceVerdict[];
    try {
      verdicts = await this.call('PrepareGuest', (c) =>
        c.prepareGuest(
          info.uuid,
          info.name,
          devices.map((d) => ({ address: d.address, presentedToken: d.presentedToken })),
        ),
      );
    } catch (err) {
      const e = toVfbError(err);
      const vfs = devices.map((d) => d.address);
      logger.info(
        { ...fields, code: e.code, vfs: vfs.join(' ') },
        'no verdict from the broker; start refused',
      );
      const outage =
        e.details['repliedBy'] !== 'broker' && (e.code === 'TIMEOUT' || e.code === 'UNAVAILABLE');
      const fix = outage ? FIX_BROKER : e.hint;
      return {
        exitCode: e.exitCode,
        stderrLines: [
          `vfbroker: ${this.brokerProblem(e)}; ${plural(vfs)} not checked; start refused — ${fix}`,
        ],
      };
    }
    const tokens = devices.flatMap((d) => (d.presentedToken === null ? [] : [d.presentedToken]));
    const lines: string[] = [];
    for (const device of devices) {
      const verdict = verdicts.find((v) => v.address === device.address);
      if (verdict && isAcceptingVerdict(verdict.verdict)) continue;
      const line = verdict
        ? refusalLine(verdict, tokens)
        : `vfbroker: the broker gave no verdict for VF ${device.address}; start refused — ${FIX_BROKER}`;
      logger.info({ ...fields, vf: device.address, verdict: verdict?.verdict ?? 'none' }, 'VF refused');
      lines.push(line);
    }
    if (lines.length > 0) return { exitCode: REFUSED_EXIT, stderrLines: lines };
    logger.info({ ...fields, vfs: devices.length }, 'every VF accepted');
    return OK;
  }

  /** started/stopped/release: tell the broker when VFs are involved; a failure is logged, never fatal. */
  private async notify(
    info: DomainInfo,
    devices: readonly TokenDevice[],
    member: string,
    call: (c: HookBrokerClient) => Promise<void>,
  ): Promise<QemuHookResult> {
    const fields = { op: this.invocation.rawOp, guest: info.name, uuid: info.uuid };
    if (devices.length === 0) return OK;
    try {
      await this.call(member, call);
    } catch (err) {
      const e = toVfbError(err);
      this.options.logger.warn(
        { ...fields, code: e.code, reason: this.brokerProblem(e) },
        `${member} failed`,
      );
    }
    return OK;
  }

  /** Connects on first use; the connection and the reply share the run's deadline. */
  private async call<T>(member: string, body: (c: HookBrokerClient) => Promise<T>): Promise<T> {
    const late = () =>
      new VfbError('TIMEOUT', `broker not reachable within ${seconds(this.deadlineMs)}`, {
        details: { member },
      });
    const work = async () => {
      if (this.client === null) {
        const client = await this.options.connectBroker();
        // A connection that arrives after the deadline has no one left to close it but us.
        if (this.signal.aborted) {
          client.close();
          throw late();
        }
        this.client = client;
      }
      return body(this.client);
    };
    return untilAborted(work(), this.signal, late);
  }

  private brokerProblem(e: VfbError): string {
    // An error the broker sent (Vault down, a lease write failed) is its answer, not an outage.
    if (e.details['repliedBy'] === 'broker') return `the broker could not decide (${e.message})`;
    if (e.code === 'TIMEOUT') return e.message;
    if (e.code === 'UNAVAILABLE') return `broker not reachable (${e.message})`;
    return `the broker refused the request (${e.message})`;
  }
}

function refusalLine(v: DeviceVerdict, tokens: readonly string[]): string {
  let message = v.message.replace(/\p{Cc}+/gu, ' ').trim();
  // The broker never puts a token in a message; if one ever did, it stops here.
  for (const t of tokens) if (t.length > 0) message = message.split(t).join('<redacted>');
  if (message === '') message = `VF ${v.address} refused: ${v.verdict}`;
  else if (!message.includes(v.address)) message = `VF ${v.address}: ${message}`;
  return `vfbroker: ${message.slice(0, MAX_MESSAGE)}`;
}

function plural(vfs: readonly string[]): string {
  return vfs.length === 1 ? `VF ${vfs[0] ?? ''}` : `VFs ${vfs.join(', ')}`;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** A domain name from argv, safe to put in a message. */
function shown(name: string): string {
  return JSON.stringify(name.slice(0, 64));
}
