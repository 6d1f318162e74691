/**
 * The demo's output. For people: short sections written as the demo goes — what is being set up,
 * each step and why, the result — coloured only on a terminal. With --json: nothing until the end,
 * then the whole DemoReport as one document. Neither ever holds a token: tokens appear as
 * "generation N".
 */
import type { PfSummary } from '../broker/api.js';
import type { DemoReport, GuestReport, HookStep, KeptReport, Step } from './report.js';

export interface TranscriptOptions {
  readonly json: boolean;
  readonly colour: boolean;
}

const INDENT = '  ';

export class Transcript {
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly options: TranscriptOptions,
  ) {}

  get json(): boolean {
    return this.options.json;
  }

  /** A heading and the lines that explain it. */
  section(title: string, ...lines: readonly string[]): void {
    this.write('', this.paint('1', title), ...lines.map((l) => INDENT + l));
  }

  /** More explanation under the current section. */
  note(...lines: readonly string[]): void {
    this.write(...lines.map((l) => INDENT + l));
  }

  pfs(pfs: readonly PfSummary[], cards: ReadonlyMap<string, string>): void {
    this.write(
      ...pfs.map(
        (p) =>
          `${INDENT}${p.address}  ${(cards.get(p.address) ?? '').padEnd(20)} ${p.plugin.padEnd(10)} ${p.state.padEnd(4)}` +
          ` ${String(p.numVfs).padStart(2)} VFs  ${p.needsToken ? `token generation ${p.generation}, rotation ${p.rotationMode}` : 'no token needed'}`,
      ),
    );
  }

  guest(guest: GuestReport): void {
    this.write(`${INDENT}${this.paint('1', guest.name)} (${guest.uuid}): ${guest.story}`);
    for (const vf of guest.vfs) {
      const token = { active: 'the active token', other: 'a token the PF does not use', none: 'no token' }[
        vf.token
      ];
      this.write(`${INDENT}${INDENT}VF ${vf.address} (${vf.card} VF ${vf.index}), ${token}`);
    }
  }

  step(step: Step): void {
    switch (step.kind) {
      case 'hook':
        return this.hook(step);
      case 'token-status':
        return this.write(
          `${INDENT}$ ${step.command.join(' ')}`,
          ...step.output.map((l) => INDENT + INDENT + l),
        );
      case 'rotate':
        return this.write(
          `${INDENT}${step.pf}: ${step.state} (${step.mode} rotation), generation ${step.generation.before} → ${step.generation.after}`,
        );
      case 'sync':
        return this.write(
          `${INDENT}${step.guest}'s definition now carries generation ${step.generation} for PF ${step.pf}`,
        );
    }
  }

  kept(kept: KeptReport): void {
    this.section(
      'Still running (--keep)',
      `The broker, the PF driver stand-ins and the bus keep running in ${kept.directory}.`,
      `The bus: ${kept.busAddress}. Ask the broker, e.g.:`,
      `${INDENT}${kept.tryCommand}`,
      'Run the hook yourself on a guest, as libvirt would:',
      `${INDENT}${kept.hookCommand}`,
      `Stop everything and remove the directory with:`,
      `${INDENT}${kept.stopCommand}`,
    );
  }

  /** --json: the whole record, once, at the end. */
  document(report: DemoReport): void {
    if (this.options.json) this.out.write(JSON.stringify(report, null, 2) + '\n');
  }

  private hook(step: HookStep): void {
    const call = `hook: ${step.args.join(' ')}`;
    if (step.outcome === 'notified') {
      const member = step.args[1] === 'started' ? 'GuestStarted' : 'ReleaseGuest';
      this.write(`${INDENT}${call}  →  exit ${step.exitCode}, the broker was told: ${member}`);
      return;
    }
    const result =
      step.outcome === 'accepted'
        ? this.paint('32', `accepted (${step.verdict ?? 'ok'}): libvirt goes on and starts QEMU`)
        : this.paint(
            '31',
            `refused (${step.refusals.map((r) => `${r.vf}: ${r.verdict}`).join(', ') || `exit ${step.exitCode}`})`,
          );
    this.write(`${INDENT}virsh start ${step.guest}  →  ${call}  →  ${result}`);
    if (step.libvirtError)
      this.write(...step.libvirtError.flatMap((l) => l.split('\n')).map((l) => INDENT + '| ' + l));
  }

  private paint(code: string, text: string): string {
    return this.options.colour ? `\u001b[${code}m${text}\u001b[0m` : text;
  }

  private write(...lines: readonly string[]): void {
    if (!this.options.json) this.out.write(lines.map((l) => l + '\n').join(''));
  }
}
